import Testing

/// Every test that starts real pods, in one serialized suite: they share two cores and one
/// containerd, and their timing checks (probe ±0.15 s, pull within 10%) must not compete.
@Suite(.serialized) enum ContainerRuntimeIntegration {}
