// Package controller is the controller side of a strata cluster: the
// active controller's decisions, and each node's part in the broker
// lifecycle.
//
// # Decisions
//
// Pure functions of the metadata image: where a new partition's replicas
// go (PlaceReplicas: Kafka's rack-aware assignment, leaders balanced),
// whether an explicit assignment is acceptable (ValidateAssignment), and
// which leader and ISR a partition gets when a broker is fenced, shuts
// down or comes back, or when a preferred or unclean election is asked
// for (FenceChanges, ControlledShutdownChanges, UnfenceChanges,
// PreferredLeader, UncleanLeader: Kafka's ReplicationControlManager and
// PartitionChangeBuilder), whether a leader's ISR change is accepted
// (AlterPartitionChanges: broker, leader and partition epochs checked,
// KIP-497's compare-and-swap), and which partitions the periodic checks
// move (RebalanceChanges for auto.leader.rebalance.enable, UncleanChanges
// for unclean.leader.election.enable, which Controller.Unclean resolves
// per topic). Each returns metadata records for the caller to propose with
// cluster.Store.Propose, which checks them against the latest image on the
// active controller.
//
// # Broker lifecycle (KIP-631)
//
// Controller runs on every node. As a broker it registers with the active
// controller (BrokerRegistration, a new incarnation id per process; the
// broker epoch is the image's end offset at registration), registers
// fenced, heartbeats every broker.heartbeat.interval.ms with its image's
// offset, and is unfenced once that offset is past its registration. As
// the active controller it answers those requests, fences a broker whose
// last heartbeat is older than broker.session.timeout.ms and moves its
// leaderships away, and runs controlled shutdowns (a heartbeat with
// WantShutdown: leaderships move away, then ShouldShutdown). Every
// leader.imbalance.check.interval.seconds it also runs BalanceLeaders:
// unclean elections where allowed, and preferred leader elections with
// auto.leader.rebalance.enable. Partition leaders send it AlterPartition
// (Client.AlterPartition) to shrink or expand their ISR. Session times
// are kept in memory; a new active controller gives every broker a fresh
// session.
//
// # Talking to the controller
//
// Client sends Kafka requests to the active controller's controller
// listener, which carries both raft's transport and Kafka's protocol
// (cluster.SplitListener tells them apart by the first byte). Admin
// requests a node cannot decide itself (CreateTopics and the other
// metadata changes) are forwarded there as decoded, at a flexible version,
// and the answer carries the change's metadata offset in a tagged field
// (MetadataOffsetTag) so that the forwarding node answers its client only
// once its own image holds the change. This departs from DESIGN.md's
// sketch in two ways, both deliberate: there is no Envelope (KIP-590)
// around forwarded requests, since strata has no principals to carry yet
// (security will add it), and partitions are created by the node that
// leads them when first used, not eagerly on every metadata delta; only
// deletions, group coordinator moves and config changes follow each delta
// (kafka.Handler.watchImage).
//
// The package imports internal/cluster, its records, and franz-go's kmsg
// and kerr; cluster never imports controller (STYLE.md, package layout).
package controller
