"""The aggregator dialect (seed 002): ``wan26_r2v`` at ``/model/v1/generation``."""
