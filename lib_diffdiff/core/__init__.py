"""The schedule and the injection: which pixel is held at which noise level, and the per-call
injection around any sampler's model calls, in the three noise parameterisations."""
