"""From a dataset to fitted predictors: feature rows, samples, training and the model choice."""
