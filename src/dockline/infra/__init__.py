"""The AWS deployment of dockline: a CDK construct, a stack, and ``synth`` / ``deploy``.

Only the CLI imports this package; the Lambda function never does (it is left out of the
function's code, see ``asset.py``). Importing it does not import aws_cdk: the constructs live
in ``dockline.infra.pipeline`` (``DocklinePipeline``) and ``dockline.infra.stack``
(``DocklineStack``), which need the ``cdk`` extra.
"""

from __future__ import annotations

from dockline.infra.asset import AssetError
from dockline.infra.commands import DeployError, SynthError, deploy, synth

__all__ = ["AssetError", "DeployError", "SynthError", "deploy", "synth"]
