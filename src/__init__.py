"""Restore bitstream-corrupted JPEG images (Two-ACIR and beyond).

Stages, one sub-package each (imports point down only):
``corruption`` (JPEG + EXIF thumbnail, sector ciphers, bit errors), ``jpeg`` (robust decoder),
``sca`` (self-compensation and alignment), ``gca`` (networks and LightningModules), ``data``
(on-the-fly DataModule), ``restoration`` (the one path decode -> SCA -> model input -> model -> output, shared
by training, eval, restore and the demo), ``metrics``, ``utils`` (image I/O, photos, seeds, CLI / Hydra glue);
``errors`` (the project's exception base); entry points ``python -m src.{train,eval,restore,corrupt,demo}``.
"""
