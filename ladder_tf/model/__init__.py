"""The model: the data VAE, its ELBO terms, the priors, the mixture hyper prior and the networks.

Below the workflows, above the ground (data, config, small utilities): nothing here reads
a run directory, writes a figure file or parses arguments.
"""
