"""Restore bitstream-corrupted JPEG images (Two-ACIR and beyond).

Stages, one sub-package each (imports point down only):
``corruption`` (JPEG + EXIF thumbnail, sector ciphers, bit errors), ``jpeg`` (robust decoder),
``sca`` (self-compensation and alignment), ``gca`` (networks and LightningModules), ``data``
(on-the-fly DataModule), ``metrics``; entry points ``python -m src.{train,eval,restore,corrupt}``.
"""
