"""SFT data from the eval harness's dataset adapters: records, targets, splits, sampling, the dataset card."""
