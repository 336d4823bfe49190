"""MyStyle's personal prior: reference sets, anchors (W inversion), pivotal tuning, adapters, the alpha
space, and the prior's storage. The generator itself lives in ``photokit.stylegan2``."""
