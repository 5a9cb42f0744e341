"""A numpy-only Flower app for flwrazure's demo and end-to-end tests."""
