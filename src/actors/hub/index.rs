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

use std::collections::hash_map::Entry;
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
    rooms: HashMap<Room, RoomMembers>,
}

/// The members of one room. Most rooms have one: every socket's own sid room, and a user's room
/// while that user has one tab open. A set of one is a table of its own on the heap (52 bytes
/// with hashbrown's smallest); `One` holds the connection in the room's entry, 64 bytes less per
/// connection for the sid room alone.
#[derive(Debug, PartialEq)]
enum RoomMembers {
    One(ConnId),
    Many(HashSet<ConnId>),
}

impl RoomMembers {
    fn insert(&mut self, conn: ConnId) {
        match self {
            RoomMembers::One(one) if *one == conn => {}
            RoomMembers::One(one) => *self = RoomMembers::Many(HashSet::from([*one, conn])),
            RoomMembers::Many(many) => {
                many.insert(conn);
            }
        }
    }

    /// Removes `conn`; whether the room is empty now.
    fn remove(&mut self, conn: ConnId) -> bool {
        let RoomMembers::Many(many) = self else {
            return matches!(self, RoomMembers::One(one) if *one == conn);
        };
        many.remove(&conn);
        match many.len() {
            0 => true,
            1 => {
                // Back to one: the set's table is given back.
                let last = many.iter().next().copied();
                if let Some(last) = last {
                    *self = RoomMembers::One(last);
                }
                false
            }
            _ => false,
        }
    }

    fn contains(&self, conn: ConnId) -> bool {
        match self {
            RoomMembers::One(one) => *one == conn,
            RoomMembers::Many(many) => many.contains(&conn),
        }
    }

    fn for_each(&self, f: impl FnMut(ConnId)) {
        match self {
            RoomMembers::One(one) => std::iter::once(*one).for_each(f),
            RoomMembers::Many(many) => many.iter().copied().for_each(f),
        }
    }
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
            match self.rooms.entry(room.clone()) {
                Entry::Occupied(mut members) => members.get_mut().insert(conn),
                Entry::Vacant(place) => {
                    place.insert(RoomMembers::One(conn));
                }
            }
            slot.rooms.push(room);
        }
        // A socket is in a room or two (its sid, its user) and joins rarely: the list's growth
        // (room for four) is given back.
        slot.rooms.shrink_to_fit();
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
            if members.remove(conn) {
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
            .is_some_and(|members| members.contains(conn))
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
                        members.for_each(&mut pick);
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
        assert_eq!(index.rooms[&Room::from("ops")], RoomMembers::One(b));
        index.leave(b, &rooms(&["ops", "never"]));
        assert!(index.rooms.is_empty());
        assert!(index.members[&b].rooms.is_empty());
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn a_room_of_one_holds_its_member_inline_from_the_first_join_to_the_last_leave() {
        let (a, b, stranger) = (ConnId::next(), ConnId::next(), ConnId::next());
        let solo = &Room::from("solo");
        let mut index = NamespaceIndex::default();
        index.insert(a, (), rooms(&["solo"]));
        index.join(a, rooms(&["solo"]));
        assert_eq!(index.rooms[solo], RoomMembers::One(a), "a second join");
        index.insert(b, (), rooms(&["solo"]));
        assert_eq!(index.rooms[solo], RoomMembers::Many(HashSet::from([a, b])));
        index.insert(stranger, (), rooms(&[]));
        index.leave(stranger, &rooms(&["solo"]));
        assert_eq!(index.rooms[solo], RoomMembers::Many(HashSet::from([a, b])));
        index.leave(a, &rooms(&["solo"]));
        assert_eq!(index.rooms[solo], RoomMembers::One(b), "back to one");
        let target = to(&["solo"], &[]);
        assert_eq!(index.recipients(&[&target]).picks, vec![(b, vec![0])]);
        assert!(!index.in_room(a, solo) && index.in_room(b, solo));
        // Not a member: the one stays; the member again: still one.
        let mut one = RoomMembers::One(b);
        assert!(!one.remove(a));
        one.insert(b);
        assert_eq!(one, RoomMembers::One(b));
        index.leave(b, &rooms(&["solo"]));
        assert!(index.rooms.is_empty(), "the last leave drops the room");
    }

    #[test]
    fn a_sockets_room_list_keeps_no_spare_room() {
        let a = ConnId::next();
        let mut index = NamespaceIndex::default();
        index.insert(a, (), rooms(&["sid"]));
        assert_eq!(index.members[&a].rooms.capacity(), 1);
        index.join(a, rooms(&["user:alice", "ops"]));
        assert_eq!(index.members[&a].rooms.capacity(), 3);
    }

    /// What the index is a faster copy of: each member's value and rooms, in join order.
    #[derive(Default)]
    struct Model {
        members: HashMap<ConnId, (u32, Vec<Room>)>,
    }

    impl Model {
        fn rooms(&self) -> HashMap<Room, HashSet<ConnId>> {
            let mut rooms: HashMap<Room, HashSet<ConnId>> = HashMap::new();
            for (conn, (_, its)) in &self.members {
                for room in its {
                    rooms.entry(room.clone()).or_default().insert(*conn);
                }
            }
            rooms
        }

        fn join(&mut self, conn: ConnId, rooms: &[Room]) {
            if let Some((_, its)) = self.members.get_mut(&conn) {
                for room in rooms {
                    if !its.contains(room) {
                        its.push(room.clone());
                    }
                }
            }
        }

        fn recipients(&self, targets: &[&Target]) -> Recipients {
            let rooms = self.rooms();
            let size = |room: &Room| rooms.get(room).map_or(0, HashSet::len);
            let mut picks: HashMap<ConnId, Vec<usize>> = HashMap::new();
            let mut visited = 0;
            for (at, target) in targets.iter().enumerate() {
                let reached: HashSet<ConnId> = if target.rooms.is_empty() {
                    visited += self.members.len();
                    self.members.keys().copied().collect()
                } else {
                    visited += target.rooms.iter().map(size).sum::<usize>();
                    target
                        .rooms
                        .iter()
                        .filter_map(|room| rooms.get(room))
                        .flatten()
                        .copied()
                        .collect()
                };
                for conn in reached {
                    let excepted = target
                        .except
                        .iter()
                        .any(|room| rooms.get(room).is_some_and(|m| m.contains(&conn)));
                    if !excepted {
                        picks.entry(conn).or_default().push(at);
                    }
                }
            }
            Recipients {
                picks: picks.into_iter().collect(),
                visited,
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(usize, u32, Vec<usize>),
        Join(usize, Vec<usize>),
        Leave(usize, Vec<usize>),
        Remove(usize),
    }

    const CONNS: usize = 4;
    const ROOMS: [&str; 4] = ["a", "b", "c", "d"];

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        let conn = 0..CONNS;
        let names = || proptest::collection::vec(0..ROOMS.len(), 0..5);
        prop_oneof![
            (conn.clone(), any::<u32>(), names()).prop_map(|(c, m, r)| Op::Insert(c, m, r)),
            (conn.clone(), names()).prop_map(|(c, r)| Op::Join(c, r)),
            (conn.clone(), names()).prop_map(|(c, r)| Op::Leave(c, r)),
            conn.prop_map(Op::Remove),
        ]
    }

    fn named(at: &[usize]) -> Vec<Room> {
        at.iter().map(|i| Room::from(ROOMS[*i])).collect()
    }

    /// The index against the model after every step: members, each side of the rooms, `in_room`,
    /// and the recipients (and their cost) of every single-room, everyone and excepting target.
    fn agrees(index: &NamespaceIndex<u32>, model: &Model, conns: &[ConnId]) {
        assert_eq!(index.len(), model.members.len());
        assert_eq!(index.is_empty(), model.members.is_empty());
        for conn in conns {
            assert_eq!(index.get(*conn), model.members.get(conn).map(|(m, _)| m));
            assert_eq!(
                index.members.get(conn).map(|slot| &slot.rooms),
                model.members.get(conn).map(|(_, rooms)| rooms)
            );
        }
        let expected = model.rooms();
        let got: HashMap<Room, HashSet<ConnId>> = index
            .rooms
            .iter()
            .map(|(room, members)| {
                if let RoomMembers::Many(many) = members {
                    assert!(many.len() >= 2, "a set of one or none in {room:?}");
                }
                let mut set = HashSet::new();
                members.for_each(|conn| assert!(set.insert(conn)));
                (room.clone(), set)
            })
            .collect();
        assert_eq!(got, expected);
        for conn in conns {
            for name in ROOMS {
                let room = Room::from(name);
                let there = expected.get(&room).is_some_and(|m| m.contains(conn));
                assert_eq!(index.in_room(*conn, &room), there, "{conn:?} in {name}");
            }
        }
        let mut batch = vec![to(&[], &[]), to(&["a", "b", "a"], &["c"]), to(&[], &["d"])];
        batch.extend(ROOMS.iter().map(|name| to(&[name], &[])));
        let targets: Vec<&Target> = batch.iter().collect();
        let (got, want) = (index.recipients(&targets), model.recipients(&targets));
        assert_eq!(sorted(got.picks), sorted(want.picks));
        assert_eq!(got.visited, want.visited);
    }

    proptest::proptest! {
        #[test]
        fn any_sequence_of_inserts_joins_leaves_and_removes_agrees_with_a_plain_room_map(
            ops in proptest::collection::vec(op(), 0..40)
        ) {
            let conns: Vec<ConnId> = (0..CONNS).map(|_| ConnId::next()).collect();
            let mut index = NamespaceIndex::default();
            let mut model = Model::default();
            for op in ops {
                match op {
                    Op::Insert(c, member, at) => {
                        index.insert(conns[c], member, named(&at));
                        model.members.insert(conns[c], (member, Vec::new()));
                        model.join(conns[c], &named(&at));
                    }
                    Op::Join(c, at) => {
                        index.join(conns[c], named(&at));
                        model.join(conns[c], &named(&at));
                    }
                    Op::Leave(c, at) => {
                        let gone = named(&at);
                        index.leave(conns[c], &gone);
                        if let Some((_, its)) = model.members.get_mut(&conns[c]) {
                            its.retain(|room| !gone.contains(room));
                        }
                    }
                    Op::Remove(c) => {
                        let had = model.members.remove(&conns[c]).map(|(m, _)| m);
                        proptest::prop_assert_eq!(index.remove(conns[c]), had);
                    }
                }
                agrees(&index, &model, &conns);
            }
        }
    }

    #[test]
    fn a_room_join_for_an_unknown_connection_is_ignored() {
        let mut index: NamespaceIndex<()> = NamespaceIndex::default();
        index.join(ConnId::next(), rooms(&["ops"]));
        assert!(index.rooms.is_empty() && index.is_empty());
    }
}
