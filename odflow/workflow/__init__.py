"""Helpers behind the Snakemake rules that are not a modelling stage of their own:
fetching the model tarball, extracting the members we need, building the offline starter
model, and the glue that turns config.yaml values into a patched pipeline config."""
