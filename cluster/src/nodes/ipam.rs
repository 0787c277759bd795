//! Address allocation for the simulated nodes, as nodeipam and the CNI plugin would do it: each
//! node gets an index, from which its InternalIP (in 10.240.0.0/16) and its pod CIDR (a /24 in
//! 10.244.0.0/16 first, then further /16s of 10.128.0.0/9) follow; each pod gets a free address
//! of its node's pod CIDR.
//!
//! Indices and pod addresses already written into the API (a restart, a re-list) are reserved
//! first, so an address is never handed out twice while its first owner exists.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;

/// The first host number of the node network used for nodes (10.240.0.10 is node 0).
const NODE_IP_OFFSET: u32 = 10;
/// The node network, 10.240.0.0/16.
const NODE_NET: u32 = u32::from_be_bytes([10, 240, 0, 0]);
/// How many node indices exist: the node network's hosts after the offset.
pub const MAX_NODES: u32 = (1 << 16) - NODE_IP_OFFSET - 1;

/// The InternalIP of node `index`.
pub fn node_ip(index: u32) -> Ipv4Addr {
    Ipv4Addr::from(NODE_NET + NODE_IP_OFFSET + index)
}

/// The node index of an InternalIP written by [`node_ip`].
pub fn index_of_node_ip(ip: Ipv4Addr) -> Option<u32> {
    let value = u32::from(ip);
    let offset = value.checked_sub(NODE_NET + NODE_IP_OFFSET)?;
    (offset < MAX_NODES).then_some(offset)
}

/// The second octet of the /16 holding pod CIDR `index`: 244..=255, then 128..=243, so the
/// first 3072 nodes are in the usual 10.244.0.0/16 .. 10.255.0.0/16.
fn pod_net_octet(block: u32) -> Option<u8> {
    if block >= 128 {
        return None;
    }
    u8::try_from(128 + (116 + block) % 128).ok()
}

/// The pod CIDR (a /24) of node `index`.
pub fn pod_cidr(index: u32) -> Option<PodCidr> {
    let octet = pod_net_octet(index / 256)?;
    let third = u8::try_from(index % 256).ok()?;
    Some(PodCidr {
        base: Ipv4Addr::new(10, octet, third, 0),
        prefix: 24,
    })
}

/// The node index of a pod CIDR written by [`pod_cidr`].
pub fn index_of_pod_cidr(cidr: &PodCidr) -> Option<u32> {
    let [a, b, c, d] = cidr.base.octets();
    if a != 10 || d != 0 || cidr.prefix != 24 || b < 128 {
        return None;
    }
    // The inverse of pod_net_octet (b >= 128, so no underflow).
    let block = (u32::from(b) - 116) % 128;
    let index = block * 256 + u32::from(c);
    (pod_cidr(index).as_ref() == Some(cidr)).then_some(index)
}

/// An IPv4 CIDR a node's pods get their addresses from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodCidr {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl PodCidr {
    /// Parses `a.b.c.d/n` (IPv4 only, n between 8 and 30), normalising the base.
    pub fn parse(text: &str) -> Option<PodCidr> {
        let (ip, prefix) = text.trim().split_once('/')?;
        let ip: Ipv4Addr = ip.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        if !(8..=30).contains(&prefix) {
            return None;
        }
        let mask = u32::MAX << (32 - u32::from(prefix));
        Some(PodCidr {
            base: Ipv4Addr::from(u32::from(ip) & mask),
            prefix,
        })
    }

    /// Whether `ip` is one of this CIDR's pod addresses.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - u32::from(self.prefix));
        u32::from(ip) & mask == u32::from(self.base)
    }

    /// The pod host numbers: from 2 (1 is the bridge's, as with the usual CNI setups) to the
    /// last before broadcast.
    fn hosts(&self) -> std::ops::RangeInclusive<u32> {
        let size = 1u32 << (32 - u32::from(self.prefix));
        2..=size - 2
    }
}

impl std::fmt::Display for PodCidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

/// Node indices in use.
#[derive(Debug, Default)]
pub struct NodeIndices {
    used: BTreeSet<u32>,
    by_node: HashMap<String, u32>,
}

impl NodeIndices {
    /// Records `index` for `node` if no other node holds it; false if taken.
    pub fn reserve(&mut self, node: &str, index: u32) -> bool {
        if self.by_node.get(node) == Some(&index) {
            return true;
        }
        if index >= MAX_NODES || self.used.contains(&index) {
            return false;
        }
        self.release(node);
        self.used.insert(index);
        self.by_node.insert(node.to_owned(), index);
        true
    }

    /// The index of `node`, allocating the lowest free one if it has none.
    pub fn index_of(&mut self, node: &str) -> Option<u32> {
        if let Some(index) = self.by_node.get(node) {
            return Some(*index);
        }
        let mut candidate = 0;
        for used in &self.used {
            if *used != candidate {
                break;
            }
            candidate += 1;
        }
        (candidate < MAX_NODES && self.reserve(node, candidate)).then_some(candidate)
    }

    /// Frees the index of `node`.
    pub fn release(&mut self, node: &str) {
        if let Some(index) = self.by_node.remove(node) {
            self.used.remove(&index);
        }
    }
}

/// The pod addresses of one node's pod CIDR, by pod uid.
#[derive(Debug)]
pub struct PodIps {
    cidr: PodCidr,
    by_pod: HashMap<String, Ipv4Addr>,
    used: BTreeSet<u32>,
    /// Where the search for a free address resumes, so a freed address is not reused at once.
    next: u32,
}

impl PodIps {
    pub fn new(cidr: PodCidr) -> PodIps {
        PodIps {
            cidr,
            by_pod: HashMap::new(),
            used: BTreeSet::new(),
            next: *cidr.hosts().start(),
        }
    }

    pub fn cidr(&self) -> PodCidr {
        self.cidr
    }

    /// The address of pod `uid`, if it has one here.
    pub fn get(&self, uid: &str) -> Option<Ipv4Addr> {
        self.by_pod.get(uid).copied()
    }

    /// Records an address the pod already has (from its status); false if it is outside the
    /// CIDR or another pod holds it.
    pub fn reserve(&mut self, uid: &str, ip: Ipv4Addr) -> bool {
        if self.by_pod.get(uid) == Some(&ip) {
            return true;
        }
        let host = u32::from(ip).wrapping_sub(u32::from(self.cidr.base));
        if !self.cidr.contains(ip)
            || !self.cidr.hosts().contains(&host)
            || self.used.contains(&host)
        {
            return false;
        }
        self.release(uid);
        self.used.insert(host);
        self.by_pod.insert(uid.to_owned(), ip);
        true
    }

    /// The address of pod `uid`, allocating a free one if it has none; None when the CIDR is
    /// full.
    pub fn allocate(&mut self, uid: &str) -> Option<Ipv4Addr> {
        if let Some(ip) = self.by_pod.get(uid) {
            return Some(*ip);
        }
        let hosts = self.cidr.hosts();
        let count = hosts.end() - hosts.start() + 1;
        for step in 0..count {
            let host = hosts.start() + (self.next - hosts.start() + step) % count;
            if !self.used.contains(&host) {
                let ip = Ipv4Addr::from(u32::from(self.cidr.base) + host);
                self.used.insert(host);
                self.by_pod.insert(uid.to_owned(), ip);
                self.next = if host == *hosts.end() {
                    *hosts.start()
                } else {
                    host + 1
                };
                return Some(ip);
            }
        }
        None
    }

    /// Frees the address of pod `uid`.
    pub fn release(&mut self, uid: &str) {
        if let Some(ip) = self.by_pod.remove(uid) {
            let host = u32::from(ip).wrapping_sub(u32::from(self.cidr.base));
            self.used.remove(&host);
        }
    }

    /// The uids holding an address.
    pub fn pods(&self) -> impl Iterator<Item = &String> {
        self.by_pod.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_follow_the_index() {
        assert_eq!(node_ip(0), Ipv4Addr::new(10, 240, 0, 10));
        assert_eq!(node_ip(300), Ipv4Addr::new(10, 240, 1, 54));
        assert_eq!(index_of_node_ip(node_ip(300)), Some(300));
        assert_eq!(index_of_node_ip(Ipv4Addr::new(10, 240, 0, 9)), None);
        assert_eq!(index_of_node_ip(Ipv4Addr::new(10, 241, 0, 10)), None);

        assert_eq!(pod_cidr(0).unwrap().to_string(), "10.244.0.0/24");
        assert_eq!(pod_cidr(7).unwrap().to_string(), "10.244.7.0/24");
        assert_eq!(pod_cidr(256).unwrap().to_string(), "10.245.0.0/24");
        assert_eq!(
            pod_cidr(11 * 256 + 255).unwrap().to_string(),
            "10.255.255.0/24"
        );
        assert_eq!(pod_cidr(12 * 256).unwrap().to_string(), "10.128.0.0/24");
        for index in [0, 7, 256, 3071, 3072, 5000, 128 * 256 - 1] {
            assert_eq!(index_of_pod_cidr(&pod_cidr(index).unwrap()), Some(index));
        }
        assert!(pod_cidr(128 * 256).is_none());
        assert_eq!(
            index_of_pod_cidr(&PodCidr::parse("192.168.0.0/24").unwrap()),
            None
        );
        assert_eq!(
            index_of_pod_cidr(&PodCidr::parse("10.244.0.0/16").unwrap()),
            None
        );
    }

    #[test]
    fn cidrs_parse_and_contain() {
        let cidr = PodCidr::parse("10.244.3.7/24").unwrap();
        assert_eq!(cidr.to_string(), "10.244.3.0/24");
        assert!(cidr.contains(Ipv4Addr::new(10, 244, 3, 200)));
        assert!(!cidr.contains(Ipv4Addr::new(10, 244, 4, 2)));
        assert!(PodCidr::parse("fd00::/64").is_none());
        assert!(PodCidr::parse("10.0.0.0/31").is_none());
        assert!(PodCidr::parse("nonsense").is_none());
    }

    #[test]
    fn node_indices_are_unique_and_reused_after_release() {
        let mut indices = NodeIndices::default();
        assert!(indices.reserve("b", 1));
        assert!(!indices.reserve("c", 1), "taken by b");
        assert_eq!(indices.index_of("a"), Some(0));
        assert_eq!(indices.index_of("c"), Some(2));
        assert_eq!(indices.index_of("a"), Some(0), "stable");
        indices.release("a");
        assert_eq!(indices.index_of("d"), Some(0));
    }

    #[test]
    fn pod_ips_are_unique_within_the_cidr() {
        let mut ips = PodIps::new(PodCidr::parse("10.244.1.0/29").unwrap());
        // Hosts 2..=6: five addresses.
        assert!(ips.reserve("old", Ipv4Addr::new(10, 244, 1, 3)));
        assert!(
            !ips.reserve("other", Ipv4Addr::new(10, 244, 1, 3)),
            "held by old"
        );
        assert!(!ips.reserve("out", Ipv4Addr::new(10, 244, 2, 4)), "outside");
        assert!(
            !ips.reserve("bridge", Ipv4Addr::new(10, 244, 1, 1)),
            "the bridge's"
        );
        let got: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .map(|uid| ips.allocate(uid).unwrap().octets()[3])
            .collect();
        assert_eq!(got, [2, 4, 5, 6]);
        assert_eq!(ips.allocate("a").unwrap().octets()[3], 2, "stable per pod");
        assert!(ips.allocate("e").is_none(), "full");
        ips.release("b");
        assert_eq!(
            ips.allocate("e").unwrap().octets()[3],
            4,
            "freed address reused"
        );
        assert_eq!(ips.get("e"), Some(Ipv4Addr::new(10, 244, 1, 4)));
        assert_eq!(ips.pods().count(), 5);
    }
}
