"""The `assay` command: a shell module beside flows/ and deployments/, never imported by the
library."""
