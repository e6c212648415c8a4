import Foundation
import PodstartCore
#if canImport(Glibc)
import Glibc
#endif

extension PodStarter {
    /// Removes the container and sandbox (and anything else carrying this pod's UID), the pod's
    /// cgroups and log directory. Runs in a task of its own with a fresh connection, so it also
    /// completes when the start was cancelled (Ctrl-C). Returns what could not be removed.
    func teardown(_ options: PodStartOptions, state: StartState) async -> [String] {
        let endpoint = self.endpoint
        let timeout = self.callTimeout
        return await Task.detached { () -> [String] in
            var leftovers: [String] = []
            // An interrupted start may leave a call running in the runtime (a StartContainer
            // cancelled on our side goes on in containerd, and a container "starting" cannot be
            // removed yet): retry for a while before reporting leftovers.
            for round in 0..<20 {
                leftovers = await Self.removePodObjects(options, state: state, endpoint: endpoint, timeout: timeout)
                if leftovers.isEmpty { break }
                try? await Task.sleep(for: .milliseconds(100 * min(round + 1, 5)))
            }
            leftovers += Self.removePodCgroups(options)
            try? FileManager.default.removeItem(atPath: options.logDirectory)
            return leftovers
        }.value
    }

    /// One pass of removing the pod's containers and sandboxes; returns what is still there.
    static func removePodObjects(_ options: PodStartOptions, state: StartState, endpoint: CRIEndpoint,
                                 timeout: Duration) async -> [String] {
        var leftovers: [String] = []
        do {
            try await CRIClient.withClient(endpoint: endpoint, timeout: timeout) { client in
                // What we know of, plus whatever an interrupted call created without telling us.
                let selector = [KubeletLabels.podUID: options.pod.uid]
                var containers = Set(try await client.listContainers(labelSelector: selector).map(\.id))
                if let id = state.containerID { containers.insert(id) }
                var sandboxes = Set(try await client.listPodSandboxes(labelSelector: selector).map(\.id))
                if let id = state.sandboxID { sandboxes.insert(id) }
                for id in containers {
                    do {
                        try await client.stopContainer(id: id, gracePeriodSeconds: 0)
                        try await client.removeContainer(id: id)
                    } catch let error as CRIError where error.isNotFound {
                    } catch {
                        leftovers.append("container \(id): \(error)")
                    }
                }
                for id in sandboxes {
                    do {
                        try await client.stopPodSandbox(id: id)
                        try await client.removePodSandbox(id: id)
                    } catch let error as CRIError where error.isNotFound {
                    } catch {
                        leftovers.append("sandbox \(id): \(error)")
                    }
                }
            }
        } catch {
            // Without a runtime to ask, only what we know was created is a leftover.
            if state.sandboxID != nil || state.containerID != nil {
                leftovers.append("pod \(options.pod): \(error)")
            }
        }
        return leftovers
    }

    /// runc leaves the pod-level cgroup (the sandbox's parent) in every hierarchy; the kubelet
    /// removes it itself, so do we. Only empty cgroups can be removed; a busy one is reported.
    static func removePodCgroups(_ options: PodStartOptions) -> [String] {
        var leftovers: [String] = []
        let base = "/sys/fs/cgroup"
        let hierarchies = ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []).map { "\(base)/\($0)" } + [base]
        for hierarchy in hierarchies {
            let dir = hierarchy + options.cgroupParent
            var st = stat()
            guard stat(dir, &st) == 0 else { continue }
            // Container cgroups below the pod are removed by runc; remove any left, deepest first.
            let children = ((try? FileManager.default.subpathsOfDirectory(atPath: dir)) ?? [])
                .filter { !$0.contains(".") || $0.hasSuffix(".scope") }
                .map { "\(dir)/\($0)" }
                .filter { var s = stat(); return stat($0, &s) == 0 && s.st_mode & S_IFMT == S_IFDIR }
                .sorted { $0.count > $1.count }
            for child in children { rmdir(child) }
            if rmdir(dir) != 0 && errno != ENOENT {
                leftovers.append("cgroup \(dir): \(String(cString: strerror(errno)))")
            }
        }
        return leftovers
    }
}
