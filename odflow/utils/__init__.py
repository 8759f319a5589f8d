"""Small shared helpers: atomic file output and command-line plumbing."""
