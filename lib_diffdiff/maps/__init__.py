"""Change maps: reading them from any form, shaping them, and bringing them onto the pixels the WebUI
samples (resize modes, the "only masked" crop, the latent grid, soft inpainting)."""
