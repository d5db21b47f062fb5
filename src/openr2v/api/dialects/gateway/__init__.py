"""The gateway dialect (the gateway's docs): ``/v1/video/generations``, ``{code, message, data}`` poll envelope."""
