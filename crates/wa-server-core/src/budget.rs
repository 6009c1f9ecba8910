//! Budgets per account and per client address, shared by every connection of a server node:
//! a connection's own rate limit does not stop one account from opening many connections, or
//! one address from creating many accounts.
//!
//! Each `(who, kind)` pair has a token bucket on the core's time. The table is bounded
//! ([`MAX_ENTRIES`]): when full, buckets idle long enough to be full again are forgotten first
//! (forgetting them changes nothing); if none is, the newcomer is refused. In a cluster each node
//! keeps its own table, so the budgets hold per node (documented in the threat model).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;

use wa_wire::Time;

use crate::rate::Bucket;

/// Buckets kept at most.
pub const MAX_ENTRIES: usize = 100_000;

/// What a budget is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// Messages sent (relays).
    Send,
    /// Delivery and read receipts.
    Receipt,
    /// Key directory and existence queries, group metadata, presence subscriptions.
    Query,
    /// Presence updates.
    Presence,
    /// Registration codes asked for.
    Register,
}

/// Who spends it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Who {
    /// An account, by number.
    Account(String),
    /// A client address.
    Address(IpAddr),
}

/// A rate: `per_second` on average (may be fractional: 0.01 is one every 100 s), `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens per second.
    pub per_second: f64,
    /// The bucket's size.
    pub burst: u32,
}

/// The budgets' rates, with documented defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BudgetLimits {
    /// Messages one account sends: default 20/s, bursts of 200.
    pub send: Rate,
    /// Receipts one account sends: default 200/s, bursts of 2000.
    pub receipt: Rate,
    /// Queries one account makes: default 10/s, bursts of 100.
    pub query: Rate,
    /// Presence updates one account makes: default 5/s, bursts of 30.
    pub presence: Rate,
    /// Registration codes one address asks for: default one every 10 minutes, bursts of 5.
    pub register: Rate,
    /// Messages one address sends (all its accounts together): default 200/s, bursts of 2000.
    pub send_per_address: Rate,
}

impl Default for BudgetLimits {
    fn default() -> Self {
        BudgetLimits {
            send: Rate {
                per_second: 20.0,
                burst: 200,
            },
            receipt: Rate {
                per_second: 200.0,
                burst: 2000,
            },
            query: Rate {
                per_second: 10.0,
                burst: 100,
            },
            presence: Rate {
                per_second: 5.0,
                burst: 30,
            },
            register: Rate {
                per_second: 1.0 / 600.0,
                burst: 5,
            },
            send_per_address: Rate {
                per_second: 200.0,
                burst: 2000,
            },
        }
    }
}

impl BudgetLimits {
    /// Budgets no one reaches: for load tests on a trusted network, never for a server that
    /// strangers can reach (the per-connection rate and every quota still hold).
    pub fn unlimited() -> BudgetLimits {
        let rate = Rate {
            per_second: 1e9,
            burst: u32::MAX,
        };
        BudgetLimits {
            send: rate,
            receipt: rate,
            query: rate,
            presence: rate,
            register: rate,
            send_per_address: rate,
        }
    }

    fn rate(&self, address: bool, kind: Kind) -> Rate {
        match (address, kind) {
            (true, Kind::Send) => self.send_per_address,
            (false, Kind::Send) => self.send,
            (_, Kind::Receipt) => self.receipt,
            (_, Kind::Query) => self.query,
            (_, Kind::Presence) => self.presence,
            (_, Kind::Register) => self.register,
        }
    }
}

impl Kind {
    /// How many kinds there are.
    const COUNT: usize = 5;

    /// Its place among a spender's buckets.
    fn index(self) -> usize {
        match self {
            Kind::Send => 0,
            Kind::Receipt => 1,
            Kind::Query => 2,
            Kind::Presence => 3,
            Kind::Register => 4,
        }
    }

    /// Every kind, in the order of [`Kind::index`].
    const ALL: [Kind; Kind::COUNT] = [
        Kind::Send,
        Kind::Receipt,
        Kind::Query,
        Kind::Presence,
        Kind::Register,
    ];
}

/// One spender's buckets, one per kind it has spent, with when each was last used.
type Buckets = [Option<(Bucket, Time)>; Kind::COUNT];

/// The table of budgets of one server node. Accounts are looked up by the number itself, so
/// a request's check allocates nothing.
#[derive(Debug)]
pub struct Budgets {
    limits: BudgetLimits,
    accounts: HashMap<String, Buckets>,
    addresses: HashMap<IpAddr, Buckets>,
    /// Buckets held, in both maps.
    len: usize,
}

impl Budgets {
    /// An empty table with these rates.
    pub fn new(limits: BudgetLimits) -> Budgets {
        Budgets {
            limits,
            accounts: HashMap::new(),
            addresses: HashMap::new(),
            len: 0,
        }
    }

    /// Whether `who` may spend one `kind` now (and spends it).
    pub fn allow(&mut self, who: &Who, kind: Kind, now: Time) -> bool {
        match who {
            Who::Account(number) => self.allow_account(number, kind, now),
            Who::Address(address) => self.allow_address(*address, kind, now),
        }
    }

    /// Whether account `number` may spend one `kind` now (and spends it).
    pub fn allow_account(&mut self, number: &str, kind: Kind, now: Time) -> bool {
        self.spend(|b| &mut b.accounts, number, false, kind, now)
    }

    /// Whether client address `address` may spend one `kind` now (and spends it).
    pub fn allow_address(&mut self, address: IpAddr, kind: Kind, now: Time) -> bool {
        self.spend(|b| &mut b.addresses, &address, true, kind, now)
    }

    /// Spends one `kind` from the bucket of `key` in the map `of` picks (an address's when
    /// `address`), making the bucket if it has none and the table has room: when the table is
    /// full, the idle buckets go first.
    fn spend<K, Q>(
        &mut self,
        of: fn(&mut Budgets) -> &mut HashMap<K, Buckets>,
        key: &Q,
        address: bool,
        kind: Kind,
        now: Time,
    ) -> bool
    where
        K: Borrow<Q> + Hash + Eq,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let slot = of(self)
            .get_mut(key)
            .and_then(|buckets| buckets.get_mut(kind.index()))
            .and_then(Option::as_mut);
        if let Some((bucket, last)) = slot {
            *last = now;
            return bucket.take(now);
        }
        if self.len >= MAX_ENTRIES {
            self.forget_idle(now);
            if self.len >= MAX_ENTRIES {
                return false;
            }
        }
        let rate = self.limits.rate(address, kind);
        let mut bucket = Bucket::with_rate(rate.per_second, rate.burst, now);
        let allowed = bucket.take(now);
        let buckets = of(self).entry(key.to_owned()).or_default();
        if let Some(slot) = buckets.get_mut(kind.index()) {
            *slot = Some((bucket, now));
            self.len += 1;
        }
        allowed
    }

    /// Forgets the buckets that would be full again by now (idle long enough to refill).
    fn forget_idle(&mut self, now: Time) {
        let limits = &self.limits;
        let mut len = 0;
        let mut keep = |address: bool, buckets: &mut Buckets| {
            for (slot, kind) in buckets.iter_mut().zip(Kind::ALL) {
                let rate = limits.rate(address, kind);
                let refill = f64::from(rate.burst) / rate.per_second.max(f64::MIN_POSITIVE);
                if slot
                    .as_ref()
                    .is_some_and(|(_, last)| now.since(*last).as_secs_f64() >= refill)
                {
                    *slot = None;
                }
                len += usize::from(slot.is_some());
            }
            buckets.iter().any(Option::is_some)
        };
        self.accounts.retain(|_, buckets| keep(false, buckets));
        self.addresses.retain(|_, buckets| keep(true, buckets));
        self.len = len;
    }

    /// Buckets held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_budgets_are_not_reached() {
        let mut budgets = Budgets::new(BudgetLimits::unlimited());
        let t0 = Time::from_secs(1000);
        let who = Who::Address(std::net::IpAddr::from([127, 0, 0, 1]));
        assert!((0..100_000).all(|_| budgets.allow(&who, Kind::Register, t0)));
    }

    #[test]
    fn an_account_has_one_budget_whatever_its_connections() {
        let mut budgets = Budgets::new(BudgetLimits::default());
        let who = Who::Account("15551234567".into());
        let t0 = Time::from_secs(1000);
        let sent = (0..1000)
            .filter(|_| budgets.allow(&who, Kind::Send, t0))
            .count();
        assert_eq!(sent, 200);
        // 20 per second: one more after 50 ms.
        assert!(budgets.allow(&who, Kind::Send, Time::from_millis(t0.as_millis() + 50)));
        // Another account and another kind have their own.
        assert!(budgets.allow(&Who::Account("15559876543".into()), Kind::Send, t0));
        assert!(budgets.allow(&who, Kind::Receipt, t0));
        // A bucket per spender and kind: the account's two, the other account's one.
        assert_eq!(budgets.len(), 3);
        // An address is a spender of its own, with the per-address rate for sends.
        let address = Who::Address("10.0.0.2".parse().unwrap());
        let sent = (0..3000)
            .filter(|_| budgets.allow(&address, Kind::Send, t0))
            .count();
        assert_eq!(sent, 2000);
        assert_eq!(budgets.len(), 4);
    }

    #[test]
    fn registrations_per_address_are_slow() {
        let mut budgets = Budgets::new(BudgetLimits::default());
        let who = Who::Address("10.0.0.1".parse().unwrap());
        let t0 = Time::from_secs(1000);
        assert_eq!(
            (0..20)
                .filter(|_| budgets.allow(&who, Kind::Register, t0))
                .count(),
            5
        );
        assert!(!budgets.allow(&who, Kind::Register, Time::from_secs(1000 + 300)));
        assert!(budgets.allow(&who, Kind::Register, Time::from_secs(1000 + 601)));
    }

    #[test]
    fn the_table_is_bounded_and_forgets_idle_buckets_first() {
        let mut budgets = Budgets::new(BudgetLimits::default());
        let t0 = Time::from_secs(1000);
        for n in 0..MAX_ENTRIES {
            assert!(budgets.allow(&Who::Account(n.to_string()), Kind::Query, t0));
        }
        // Full, and nothing idle yet: a newcomer is refused.
        assert!(!budgets.allow(&Who::Account("new".into()), Kind::Query, t0));
        // Once the old buckets have refilled (100 tokens at 10/s: 10 s), they go.
        assert!(budgets.allow(
            &Who::Account("new".into()),
            Kind::Query,
            Time::from_secs(1011)
        ));
        assert_eq!(budgets.len(), 1);
    }
}
