"""openr2v's OpenAI-style ``/v1/videos``: what the ``openai`` SDK's videos resource sends and parses."""
