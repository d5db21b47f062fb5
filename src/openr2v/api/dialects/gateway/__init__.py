"""The gateway dialect (seed 003): ``/v1/video/generations`` with the ``{code, message, data}`` poll envelope."""
