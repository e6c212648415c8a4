/// The median of `xs` (the mean of the middle two for an even count); `xs` must not be empty.
public func median(_ xs: [Double]) -> Double {
    precondition(!xs.isEmpty, "median of no samples")
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
