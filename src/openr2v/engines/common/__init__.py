"""What the compositor and vace engines share: reference stills and frames (sources), who is who
(vision, segment, casting, storyboard), the soundtrack (sound), layers and the watermark (cards,
watermark). Nothing here imports an engine."""
