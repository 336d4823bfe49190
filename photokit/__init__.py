"""photokit: index a personal photo library, learn each person's face, restore old photos.

Layers (data flows one way): library -> faces -> prior -> restore, with ``db`` and ``store``
beneath them and ``cli`` on top.
"""

__version__ = "0.1.0"
