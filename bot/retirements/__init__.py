"""When fine-tuned models stop training and stop serving, and the warnings that go out before."""
