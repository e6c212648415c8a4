/// Arithmetic on numbers that came from outside (log lines, trace and profile files, flags):
/// clamped to the type's range instead of trapping. Where a clamped value would be reported,
/// callers check the range first and reject; these are for sums and differences whose inputs
/// were each valid but whose result may not fit.
extension Int64 {
    /// `self + other`, clamped to `Int64.min…Int64.max`.
    @inlinable public func saturatingAdd(_ other: Int64) -> Int64 {
        let (r, o) = addingReportingOverflow(other)
        return o ? (other > 0 ? .max : .min) : r
    }

    /// `self − other`, clamped to `Int64.min…Int64.max`.
    @inlinable public func saturatingSubtract(_ other: Int64) -> Int64 {
        let (r, o) = subtractingReportingOverflow(other)
        return o ? (other < 0 ? .max : .min) : r
    }

    /// `|self|` as an unsigned value (defined for `Int64.min`, unlike `abs`).
    @inlinable public var absoluteMagnitude: UInt64 { magnitude }
}

extension UInt64 {
    /// `self + other`, clamped to `UInt64.max`.
    @inlinable public func saturatingAdd(_ other: UInt64) -> UInt64 {
        let (r, o) = addingReportingOverflow(other)
        return o ? .max : r
    }
}

extension Sequence {
    /// The saturating sum of a byte count (or any UInt64) over the elements.
    @inlinable public func saturatingSum(_ value: (Element) -> UInt64) -> UInt64 {
        reduce(UInt64(0)) { $0.saturatingAdd(value($1)) }
    }

    /// The saturating sum of a signed count over the elements.
    @inlinable public func saturatingSum(_ value: (Element) -> Int64) -> Int64 {
        reduce(Int64(0)) { $0.saturatingAdd(value($1)) }
    }
}
