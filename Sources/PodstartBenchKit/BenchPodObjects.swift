import Foundation

/// The pod objects `podstart-bench agent --churn` publishes, shaped as the real API server wrote
/// them: the recorded `pod-e-burst-01` (reference/real-cluster-1.28/api-pods-final.json, a
/// small-files pod of kube-apiserver v1.28.7 with its managedFields) under a new name, UID, node and
/// image, at each step of a kubelet's start and of a graceful deletion:
/// - `added`: as POSTed (the recording's first managedFields entry), status `Pending`;
/// - `pending`: the kubelet's first status write once the sandbox runs (Initialized and
///   PodScheduled true, Ready false, the container waiting in ContainerCreating);
/// - `running`: Running and Ready, the recording's status with this start's times and ids;
/// - `terminating`: `deletionTimestamp` and `deletionGracePeriodSeconds` set, as a DELETE sets
///   them (Kubernetes' graceful deletion; not in the recording, which deleted nothing).
public struct BenchPodObjects: @unchecked Sendable {
    public let name: String
    public let uid: String
    let template: [String: Any]

    public init(name: String, namespace: String = "default", uid: String, node: String, image: String) {
        var pod = try! JSONSerialization.jsonObject(with: Data(Self.recorded.utf8)) as! [String: Any]
        var meta = pod["metadata"] as! [String: Any]
        meta["name"] = name
        meta["namespace"] = namespace
        meta["uid"] = uid
        meta["labels"] = ["app": "bench-churn"]
        pod["metadata"] = meta
        var spec = pod["spec"] as! [String: Any]
        spec["nodeName"] = node
        var containers = spec["containers"] as! [[String: Any]]
        containers[0]["image"] = image
        spec["containers"] = containers
        pod["spec"] = spec
        self.name = name
        self.uid = uid
        template = pod
    }

    public static func rfc3339Second(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down)))
    }

    static func condition(_ type: String, _ status: String, _ at: String) -> [String: Any] {
        ["type": type, "status": status, "lastProbeTime": NSNull(), "lastTransitionTime": at]
    }

    var containerName: String { ((template["spec"] as! [String: Any])["containers"] as! [[String: Any]])[0]["name"] as! String }
    var image: String { ((template["spec"] as! [String: Any])["containers"] as! [[String: Any]])[0]["image"] as! String }

    public func added(at: Date) -> [String: Any] {
        var pod = template
        var meta = pod["metadata"] as! [String: Any]
        let stamp = Self.rfc3339Second(at)
        meta["creationTimestamp"] = stamp
        var fields = meta["managedFields"] as! [[String: Any]]
        fields = [fields[0]]
        fields[0]["time"] = stamp
        meta["managedFields"] = fields
        pod["metadata"] = meta
        pod["status"] = ["phase": "Pending", "qosClass": "BestEffort"]
        return pod
    }

    public func pending(created: Date, at: Date) -> [String: Any] {
        var pod = withKubeletFields(added(at: created), at: at)
        let c = Self.rfc3339Second(created)
        var status = (template["status"] as! [String: Any])
        status["phase"] = "Pending"
        status["startTime"] = c
        status["conditions"] = [Self.condition("Initialized", "True", c), Self.condition("Ready", "False", c),
                                Self.condition("ContainersReady", "False", c), Self.condition("PodScheduled", "True", c)]
        status["podIP"] = nil
        status["podIPs"] = nil
        status["containerStatuses"] = [["name": containerName, "state": ["waiting": ["reason": "ContainerCreating"]], "lastState": [:] as [String: Any],
                                        "ready": false, "restartCount": 0, "image": image, "imageID": "", "started": false] as [String: Any]]
        pod["status"] = status
        return pod
    }

    public func running(created: Date, startedAt: Date, readyAt: Date, containerID: String, imageDigest: String?, podIP: String?) -> [String: Any] {
        var pod = withKubeletFields(added(at: created), at: readyAt)
        let c = Self.rfc3339Second(created), r = Self.rfc3339Second(readyAt)
        var status = (template["status"] as! [String: Any])
        status["startTime"] = c
        status["conditions"] = [Self.condition("Initialized", "True", c), Self.condition("Ready", "True", r),
                                Self.condition("ContainersReady", "True", r), Self.condition("PodScheduled", "True", c)]
        if let podIP { status["podIP"] = podIP; status["podIPs"] = [["ip": podIP]] }
        var container = (status["containerStatuses"] as! [[String: Any]])[0]
        container["state"] = ["running": ["startedAt": Self.rfc3339Second(startedAt)]]
        container["image"] = image
        let repository = image.split(separator: "@").first.map { String($0) }.map { ref -> String in
            // strip the tag (a colon after the last slash), keep a registry's port
            guard let slash = ref.lastIndex(of: "/"), let colon = ref[slash...].lastIndex(of: ":") else { return ref }
            return String(ref[..<colon])
        } ?? image
        container["imageID"] = imageDigest.map { "\(repository)@\($0)" } ?? ""
        container["containerID"] = "containerd://\(containerID)"
        status["containerStatuses"] = [container]
        pod["status"] = status
        return pod
    }

    /// `pod` (the last object published) with the deletion a DELETE request sets.
    public func terminating(_ pod: [String: Any], at: Date) -> [String: Any] {
        var pod = pod
        var meta = pod["metadata"] as! [String: Any]
        meta["deletionTimestamp"] = Self.rfc3339Second(at.addingTimeInterval(1))
        meta["deletionGracePeriodSeconds"] = 1
        pod["metadata"] = meta
        return pod
    }

    /// The recording's kubelet managedFields entry (status subresource) at `at`.
    func withKubeletFields(_ pod: [String: Any], at: Date) -> [String: Any] {
        var pod = pod
        var meta = pod["metadata"] as! [String: Any]
        var fields = meta["managedFields"] as! [[String: Any]]
        var kubelet = ((template["metadata"] as! [String: Any])["managedFields"] as! [[String: Any]])[1]
        kubelet["time"] = Self.rfc3339Second(at)
        fields.append(kubelet)
        meta["managedFields"] = fields
        pod["metadata"] = meta
        return pod
    }

    /// reference/real-cluster-1.28/api-pods-final.json, item pod-e-burst-01, as recorded.
    static let recorded = #"""
{
  "metadata": {
    "name": "pod-e-burst-01",
    "namespace": "default",
    "uid": "41f3262d-7a17-4d7a-9c81-9e1915521959",
    "resourceVersion": "208",
    "creationTimestamp": "2026-12-06T03:02:12Z",
    "labels": {
      "sa": "podstart"
    },
    "managedFields": [
      {
        "manager": "curl",
        "operation": "Update",
        "apiVersion": "v1",
        "time": "2026-12-06T03:02:12Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {
          "f:metadata": {
            "f:labels": {
              ".": {},
              "f:sa": {}
            }
          },
          "f:spec": {
            "f:automountServiceAccountToken": {},
            "f:containers": {
              "k:{\"name\":\"small\"}": {
                ".": {},
                "f:image": {},
                "f:imagePullPolicy": {},
                "f:name": {},
                "f:resources": {},
                "f:terminationMessagePath": {},
                "f:terminationMessagePolicy": {}
              }
            },
            "f:dnsPolicy": {},
            "f:enableServiceLinks": {},
            "f:nodeName": {},
            "f:restartPolicy": {},
            "f:schedulerName": {},
            "f:securityContext": {},
            "f:terminationGracePeriodSeconds": {}
          }
        }
      },
      {
        "manager": "kubelet",
        "operation": "Update",
        "apiVersion": "v1",
        "time": "2026-12-06T03:02:15Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {
          "f:status": {
            "f:conditions": {
              ".": {},
              "k:{\"type\":\"ContainersReady\"}": {
                ".": {},
                "f:lastProbeTime": {},
                "f:lastTransitionTime": {},
                "f:status": {},
                "f:type": {}
              },
              "k:{\"type\":\"Initialized\"}": {
                ".": {},
                "f:lastProbeTime": {},
                "f:lastTransitionTime": {},
                "f:status": {},
                "f:type": {}
              },
              "k:{\"type\":\"PodScheduled\"}": {
                ".": {},
                "f:lastProbeTime": {},
                "f:lastTransitionTime": {},
                "f:status": {},
                "f:type": {}
              },
              "k:{\"type\":\"Ready\"}": {
                ".": {},
                "f:lastProbeTime": {},
                "f:lastTransitionTime": {},
                "f:status": {},
                "f:type": {}
              }
            },
            "f:containerStatuses": {},
            "f:hostIP": {},
            "f:phase": {},
            "f:podIP": {},
            "f:podIPs": {
              ".": {},
              "k:{\"ip\":\"10.88.106.6\"}": {
                ".": {},
                "f:ip": {}
              }
            },
            "f:startTime": {}
          }
        },
        "subresource": "status"
      }
    ]
  },
  "spec": {
    "containers": [
      {
        "name": "small",
        "image": "127.0.0.1:35000/podstart-test/small-files:latest",
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "Always"
      }
    ],
    "restartPolicy": "Always",
    "terminationGracePeriodSeconds": 1,
    "dnsPolicy": "Default",
    "automountServiceAccountToken": false,
    "nodeName": "vm",
    "securityContext": {},
    "schedulerName": "default-scheduler",
    "tolerations": [
      {
        "key": "node.kubernetes.io/not-ready",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300
      },
      {
        "key": "node.kubernetes.io/unreachable",
        "operator": "Exists",
        "effect": "NoExecute",
        "tolerationSeconds": 300
      }
    ],
    "priority": 0,
    "enableServiceLinks": false,
    "preemptionPolicy": "PreemptLowerPriority"
  },
  "status": {
    "phase": "Running",
    "conditions": [
      {
        "type": "Initialized",
        "status": "True",
        "lastProbeTime": null,
        "lastTransitionTime": "2026-12-06T03:02:12Z"
      },
      {
        "type": "Ready",
        "status": "True",
        "lastProbeTime": null,
        "lastTransitionTime": "2026-12-06T03:02:15Z"
      },
      {
        "type": "ContainersReady",
        "status": "True",
        "lastProbeTime": null,
        "lastTransitionTime": "2026-12-06T03:02:15Z"
      },
      {
        "type": "PodScheduled",
        "status": "True",
        "lastProbeTime": null,
        "lastTransitionTime": "2026-12-06T03:02:12Z"
      }
    ],
    "hostIP": "10.254.254.1",
    "podIP": "10.88.106.6",
    "podIPs": [
      {
        "ip": "10.88.106.6"
      }
    ],
    "startTime": "2026-12-06T03:02:12Z",
    "containerStatuses": [
      {
        "name": "small",
        "state": {
          "running": {
            "startedAt": "2026-12-06T03:02:14Z"
          }
        },
        "lastState": {},
        "ready": true,
        "restartCount": 0,
        "image": "127.0.0.1:35000/podstart-test/small-files:latest",
        "imageID": "127.0.0.1:35000/podstart-test/small-files@sha256:a7cae5e49f18cfb4b7fa6b2942ccbd86cb8b76d2b5a7f9a2c6abdda44ec23da8",
        "containerID": "containerd://dde8ff27c83c488ace5285842518527ef780097c1cd2ccb7a6193cc4285af694",
        "started": true
      }
    ],
    "qosClass": "BestEffort"
  }
}
"""#
}
