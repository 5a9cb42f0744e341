"""A scikit-learn Flower app for flwrazure: digits classified by a linear model, trained where the data lives."""
