"""The aggregator dialect (the aggregator's docs): ``wan26_r2v`` at ``/model/v1/generation``."""
