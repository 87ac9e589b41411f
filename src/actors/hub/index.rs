//! The sockets of one namespace and their rooms, indexed both ways, and who gets which entries of a
//! batch.
//!
//! ```text
//! members: conn → (member, rooms it is in)      removal: O(its rooms), never a scan of every room
//! rooms:   room → {conn}                        a targeted entry: the union of its rooms' members
//! ```
//!
//! A batch's recipients ([`NamespaceIndex::recipients`]) follow socket.io-adapter's `apply`: an
//! entry with rooms reaches the members of those rooms (each once, however many of them it is in),
//! minus those in one of its `except` rooms; an entry without rooms reaches every member minus the
//! excepted. An entry with rooms visits only the members of its rooms, so a notification to one user
//! among 10,000 sockets costs what that user's sockets cost.

use std::collections::{HashMap, HashSet};

use super::ConnId;
use crate::protocol::target::{Room, Target};

/// A member and the rooms it is in (its side of the index).
struct Slot<M> {
    member: M,
    rooms: Vec<Room>,
}

/// The sockets of one namespace, by connection and by room.
pub(super) struct NamespaceIndex<M> {
    members: HashMap<ConnId, Slot<M>>,
    /// Who is in which room; a room is dropped when its last member leaves.
    rooms: HashMap<Room, HashSet<ConnId>>,
}

impl<M> Default for NamespaceIndex<M> {
    fn default() -> Self {
        NamespaceIndex {
            members: HashMap::new(),
            rooms: HashMap::new(),
        }
    }
}

/// Who gets which entries of a batch.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Recipients {
    /// Each recipient once, with the positions of its entries in the batch, in log order.
    pub picks: Vec<(ConnId, Vec<usize>)>,
    /// Members looked at to find them (a member in several target rooms counts once per room):
    /// what the fan-out costs, which tests hold to the recipients' count.
    pub visited: usize,
}

impl<M> NamespaceIndex<M> {
    /// Adds `conn` in `rooms` (replacing what it was, if it was a member).
    pub(super) fn insert(&mut self, conn: ConnId, member: M, rooms: Vec<Room>) {
        self.remove(conn);
        self.members.insert(
            conn,
            Slot {
                member,
                rooms: Vec::new(),
            },
        );
        self.join(conn, rooms);
    }

    /// Forgets `conn`: its membership and its rooms (rooms left empty go too), in O(its rooms).
    pub(super) fn remove(&mut self, conn: ConnId) -> Option<M> {
        let slot = self.members.remove(&conn)?;
        for room in &slot.rooms {
            self.left(conn, room);
        }
        Some(slot.member)
    }

    /// Puts `conn` in `rooms` (rooms it is in already are skipped); nothing if it is not a member.
    pub(super) fn join(&mut self, conn: ConnId, rooms: impl IntoIterator<Item = Room>) {
        let Some(slot) = self.members.get_mut(&conn) else {
            return;
        };
        for room in rooms {
            if slot.rooms.contains(&room) {
                continue;
            }
            self.rooms.entry(room.clone()).or_default().insert(conn);
            slot.rooms.push(room);
        }
    }

    /// Takes `conn` out of `rooms` (rooms it is not in are skipped).
    pub(super) fn leave(&mut self, conn: ConnId, rooms: &[Room]) {
        let Some(slot) = self.members.get_mut(&conn) else {
            return;
        };
        slot.rooms.retain(|room| !rooms.contains(room));
        for room in rooms {
            self.left(conn, room);
        }
    }

    fn left(&mut self, conn: ConnId, room: &Room) {
        if let Some(members) = self.rooms.get_mut(room) {
            members.remove(&conn);
            if members.is_empty() {
                self.rooms.remove(room);
            }
        }
    }

    /// The member of `conn`.
    pub(super) fn get(&self, conn: ConnId) -> Option<&M> {
        self.members.get(&conn).map(|slot| &slot.member)
    }

    /// Every member.
    pub(super) fn members(&self) -> impl Iterator<Item = (ConnId, &M)> {
        self.members
            .iter()
            .map(|(conn, slot)| (*conn, &slot.member))
    }

    /// How many members.
    pub(super) fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether it has no member.
    pub(super) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Whether `conn` is in `room`.
    fn in_room(&self, conn: ConnId, room: &Room) -> bool {
        self.rooms
            .get(room)
            .is_some_and(|members| members.contains(&conn))
    }

    /// Who gets which of a batch's entries, given each entry's target (all of this namespace), in
    /// log order: see the module's doc.
    pub(super) fn recipients(&self, targets: &[&Target]) -> Recipients {
        let mut picks: HashMap<ConnId, Vec<usize>> = HashMap::new();
        let mut visited = 0;
        for (at, target) in targets.iter().enumerate() {
            let mut pick = |conn: ConnId| {
                visited += 1;
                if target.except.iter().any(|room| self.in_room(conn, room)) {
                    return;
                }
                let mine = picks.entry(conn).or_default();
                // Entries are taken in order, so a second room of the same entry finds it last.
                if mine.last() != Some(&at) {
                    mine.push(at);
                }
            };
            if target.rooms.is_empty() {
                self.members.keys().copied().for_each(&mut pick);
            } else {
                for room in &target.rooms {
                    if let Some(members) = self.rooms.get(room) {
                        members.iter().copied().for_each(&mut pick);
                    }
                }
            }
        }
        Recipients {
            picks: picks.into_iter().collect(),
            visited,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::target::Namespace;

    fn rooms(names: &[&str]) -> Vec<Room> {
        names.iter().map(|name| Room::from(*name)).collect()
    }

    fn to(names: &[&str], except: &[&str]) -> Target {
        Target {
            nsp: Namespace::main(),
            rooms: rooms(names),
            except: rooms(except),
        }
    }

    /// Picks in a fixed order (the index hands them out in hash order).
    fn sorted(mut picks: Vec<(ConnId, Vec<usize>)>) -> Vec<(ConnId, Vec<usize>)> {
        picks.sort_by_key(|(conn, _)| conn.0);
        picks
    }

    #[test]
    fn recipients_of_several_rooms_get_an_entry_once() {
        let (a, b, c) = (ConnId::next(), ConnId::next(), ConnId::next());
        let mut index = NamespaceIndex::default();
        index.insert(a, (), rooms(&["ops", "dev"]));
        index.insert(b, (), rooms(&["ops"]));
        index.insert(c, (), rooms(&["sales"]));
        let target = to(&["ops", "dev"], &[]);
        let got = index.recipients(&[&target]);
        assert_eq!(sorted(got.picks), sorted(vec![(a, vec![0]), (b, vec![0])]));
        assert_eq!(got.visited, 3, "a once per room, b once, c never");
    }

    #[test]
    fn recipients_leave_out_the_excepted_with_or_without_rooms() {
        let (a, b, c) = (ConnId::next(), ConnId::next(), ConnId::next());
        let mut index = NamespaceIndex::default();
        index.insert(a, (), rooms(&["ops", "muted"]));
        index.insert(b, (), rooms(&["ops"]));
        index.insert(c, (), rooms(&[]));
        let ops_unmuted = to(&["ops"], &["muted"]);
        let all_unmuted = to(&[], &["muted"]);
        let got = index.recipients(&[&ops_unmuted, &all_unmuted]);
        assert_eq!(
            sorted(got.picks),
            sorted(vec![(b, vec![0, 1]), (c, vec![1])])
        );
    }

    #[test]
    fn recipients_keep_log_order_in_a_mixed_batch() {
        let (a, b) = (ConnId::next(), ConnId::next());
        let mut index = NamespaceIndex::default();
        index.insert(a, (), rooms(&["ops"]));
        index.insert(b, (), rooms(&[]));
        let batch = [
            to(&["ops"], &[]),
            to(&[], &[]),
            to(&["nobody"], &[]),
            to(&["ops"], &[]),
            to(&[], &["ops"]),
        ];
        let targets: Vec<&Target> = batch.iter().collect();
        let got = index.recipients(&targets).picks;
        assert_eq!(
            sorted(got),
            sorted(vec![(a, vec![0, 1, 3]), (b, vec![1, 4])])
        );
    }

    #[test]
    fn recipients_of_a_targeted_entry_visit_only_its_rooms_members() {
        let mut index = NamespaceIndex::default();
        let mut alice = None;
        for n in 0..10_000 {
            let conn = ConnId::next();
            index.insert(conn, (), vec![Room::from(format!("user:{n}"))]);
            if n == 4321 {
                alice = Some(conn);
            }
        }
        let target = to(&["user:4321", "user:none"], &[]);
        let got = index.recipients(&[&target]);
        assert_eq!(got.picks, vec![(alice.unwrap(), vec![0])]);
        assert_eq!(got.visited, 1, "one recipient, one member looked at");
        let everyone = to(&[], &[]);
        assert_eq!(index.recipients(&[&everyone]).visited, 10_000);
    }

    #[test]
    fn removal_forgets_the_connection_in_every_room_and_drops_empty_rooms() {
        let (a, b) = (ConnId::next(), ConnId::next());
        let mut index = NamespaceIndex::default();
        index.insert(a, "a", rooms(&["ops", "solo"]));
        index.insert(b, "b", rooms(&["ops"]));
        index.join(a, rooms(&["late", "ops"]));
        assert_eq!(index.members[&a].rooms, rooms(&["ops", "solo", "late"]));
        assert_eq!(index.remove(a), Some("a"));
        assert!(index.get(a).is_none());
        let mut left: Vec<&str> = index.rooms.keys().map(Room::as_str).collect();
        left.sort();
        assert_eq!(left, ["ops"], "rooms left empty are dropped");
        assert_eq!(index.rooms[&Room::from("ops")], HashSet::from([b]));
        index.leave(b, &rooms(&["ops", "never"]));
        assert!(index.rooms.is_empty());
        assert!(index.members[&b].rooms.is_empty());
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn a_room_join_for_an_unknown_connection_is_ignored() {
        let mut index: NamespaceIndex<()> = NamespaceIndex::default();
        index.join(ConnId::next(), rooms(&["ops"]));
        assert!(index.rooms.is_empty() && index.is_empty());
    }
}
