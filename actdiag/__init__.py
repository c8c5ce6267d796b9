"""actdiag: watch the activations, gradients and updates of a training network."""

__version__ = "0.1.0"
