/// A set that keeps at most `capacity` members, forgetting the least recently inserted or
/// touched first. Membership tests are O(1); inserts are amortised O(1).
///
/// For what must be remembered "long enough" but cannot be kept forever on a node that runs
/// for months: the pods already reported (late records of theirs must not open a new start),
/// the pods that were running before the agent.
public struct RecentSet<Element: Hashable & Sendable>: Sendable {
    public let capacity: Int
    /// Each member's latest stamp; `order` may hold older stamps of it, skipped when evicting.
    private var stamps: [Element: UInt64] = [:]
    private var order: [(element: Element, stamp: UInt64)] = []
    private var head = 0
    private var clock: UInt64 = 0

    public init(capacity: Int) { self.capacity = max(1, capacity) }

    public var count: Int { stamps.count }
    public func contains(_ element: Element) -> Bool { stamps[element] != nil }

    /// Adds `element`, or makes it the most recent if it is a member. Returns the member it
    /// evicted to stay within `capacity`, if any.
    @discardableResult
    public mutating func insert(_ element: Element) -> Element? {
        clock &+= 1
        stamps[element] = clock
        order.append((element, clock))
        var evicted: Element?
        while stamps.count > capacity, head < order.count {
            let (oldest, stamp) = order[head]
            head += 1
            if stamps[oldest] == stamp {
                stamps.removeValue(forKey: oldest)
                evicted = oldest
            }
        }
        // passed entries and stale stamps are dropped once they are half the queue: amortised O(1)
        if order.count > 2 * stamps.count + 1024 {
            order = order[head...].filter { stamps[$0.element] == $0.stamp }
            head = 0
        }
        return evicted
    }

    /// Makes a member the most recent (nothing for a non-member).
    public mutating func touch(_ element: Element) {
        if stamps[element] != nil { _ = insert(element) }
    }

    @discardableResult
    public mutating func remove(_ element: Element) -> Bool { stamps.removeValue(forKey: element) != nil }
}
