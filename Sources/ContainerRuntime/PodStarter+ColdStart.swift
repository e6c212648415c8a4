import PodstartCore

extension PodStarter {
    /// Removes the image and everything that would let containerd skip downloading it, whatever
    /// is left of it: the image by id (CRI then drops every reference — tag, `repo@sha256:`
    /// digest, `sha256:` id — and containerd's GC frees its content and snapshots), copies of the
    /// same repository and tag pulled through another registry host (a mirror or proxy), and
    /// images of the same repository whose tag is gone. The last case is `ctr images rm <tag>`:
    /// it deletes only the tag's record, while the `sha256:<config>` and digest records CRI made
    /// keep the content, so a lookup by tag finds nothing and the next pull takes milliseconds.
    /// Returns the ids removed.
    @discardableResult
    public func removeImageForColdStart(_ image: String, client: CRIClient) async throws -> [String] {
        var ids = Set<String>()
        if let present = try await client.imageStatus(image) { ids.insert(present.id) }
        // Same repository and tag on any host (ImageReference's one way of splitting a name).
        if let wanted = ImageReference(ignoringDigest: image) {
            for other in try await client.listImages() {
                let sameTag = other.repoTags.contains { ImageReference(ignoringDigest: $0)?.repositoryAndTag == wanted.repositoryAndTag }
                // An untagged image of this repository may be the tag's, left by a removed tag.
                let orphanOfRepository = other.repoTags.isEmpty
                    && other.repoDigests.contains { ImageReference(ignoringDigest: $0)?.repository == wanted.repository }
                if sameTag || orphanOfRepository { ids.insert(other.id) }
            }
        }
        for id in ids.sorted() {
            do {
                try await client.removeImage(id)
            } catch let error as CRIError where error.isNotFound {
                continue // removed meanwhile (by GC of another reference)
            }
        }
        if try await client.imageStatus(image) != nil {
            throw PodStartError.runtime(.badResponse(method: "RemoveImage", detail: "\(image) is still present after removal"))
        }
        for id in ids where try await client.imageStatus(id) != nil {
            throw PodStartError.runtime(.badResponse(method: "RemoveImage", detail: "\(id) (of \(image)) is still present after removal"))
        }
        return ids.sorted()
    }
}
