//! Random steps for the model test, as proptest strategies: abstract batches whose targets are
//! picks (a recent object, any object, the ID Placeholder, a Unique Identifier that does not
//! exist) that the runner resolves against the model's objects when it sends them.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Which object an item names.
#[derive(Clone, Copy, Debug)]
pub enum Pick {
    /// One of the most recently created objects.
    Recent(u8),
    /// Any object ever created.
    Any(u32),
    /// A recent live object the caller may Get (by the model).
    Mine(u8),
    /// A recent Active object the caller may Get (by the model).
    Active(u8),
    /// No Unique Identifier: the ID Placeholder.
    Placeholder,
    /// An identifier that names nothing (made up, or of an object an undone batch created).
    Missing(u8),
}

/// The request attributes of a new object (indexes into the pools of `runner`).
#[derive(Clone, Copy, Debug)]
pub struct NewSpec {
    pub name: Option<u8>,
    pub mode: Option<u8>,
    pub group: Option<u8>,
    pub owner: Option<u8>,
    pub usage: u8,
}

/// One abstract batch item.
#[derive(Clone, Debug)]
pub enum ItemSpec {
    Create(NewSpec),
    Register(NewSpec, u64),
    /// A Create without Object Type: fails once the caller is let through.
    CreateBroken,
    Locate(u8),
    Get {
        t: Pick,
        wrap: Option<Pick>,
    },
    GetAttributes(Pick),
    GetKeyPolicy(Pick),
    AddX {
        t: Pick,
        attr: u8,
        val: u8,
    },
    AddLink {
        t: Pick,
        to: Pick,
    },
    AddName {
        t: Pick,
        name: u8,
    },
    ModifyX {
        t: Pick,
        pick: u8,
        val: u8,
    },
    DeleteX {
        t: Pick,
        pick: u8,
        all: bool,
    },
    DeleteLink {
        t: Pick,
        pick: u8,
    },
    Activate(Pick),
    Revoke {
        t: Pick,
        compromise: bool,
    },
    Destroy(Pick),
    ReKey(Pick),
    Derive {
        base: Pick,
        name: Option<u8>,
    },
    SetKeyPolicy {
        t: Pick,
        owner: Option<u8>,
        group: Option<u8>,
        mode: Option<u8>,
    },
}

/// Batch Error Continuation Option (Default: none in the header, which means Stop).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnError {
    Default,
    Stop,
    Continue,
    Undo,
}

/// One step: a batch, or an administration request on its own.
#[derive(Clone, Debug)]
pub enum StepSpec {
    Batch {
        who: u8,
        on_error: OnError,
        items: Vec<ItemSpec>,
    },
    SetAccount {
        who: u8,
        user: bool,
        name: u8,
        enabled: Option<bool>,
        ops: Option<u8>,
    },
    DeleteAccount {
        who: u8,
        user: bool,
        name: u8,
    },
    Authorize {
        who: u8,
        user: u8,
        operation: u8,
        minutes: u8,
    },
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        25 => Just(Pick::Placeholder),
        30 => any::<u8>().prop_map(Pick::Recent),
        10 => any::<u32>().prop_map(Pick::Any),
        25 => any::<u8>().prop_map(Pick::Mine),
        10 => any::<u8>().prop_map(Pick::Missing),
    ]
}

/// A key to use (wrapping key, derivation base): mostly an Active one the caller may use.
fn key_to_use() -> impl Strategy<Value = Pick> {
    prop_oneof![3 => any::<u8>().prop_map(Pick::Active), 1 => explicit()]
}

/// An explicit identifier (never the placeholder).
fn explicit() -> impl Strategy<Value = Pick> {
    prop_oneof![
        3 => any::<u8>().prop_map(Pick::Recent),
        1 => any::<u32>().prop_map(Pick::Any),
        3 => any::<u8>().prop_map(Pick::Mine),
        3 => any::<u8>().prop_map(Pick::Active),
        1 => any::<u8>().prop_map(Pick::Missing),
    ]
}

fn sometimes(p: u32, s: impl Strategy<Value = u8>) -> impl Strategy<Value = Option<u8>> {
    prop_oneof![(100 - p) => Just(None), p => s.prop_map(Some)]
}

fn new_spec() -> impl Strategy<Value = NewSpec> {
    (
        sometimes(50, any::<u8>()),
        sometimes(40, any::<u8>()),
        sometimes(20, any::<u8>()),
        sometimes(8, any::<u8>()),
        any::<u8>(),
    )
        .prop_map(|(name, mode, group, owner, usage)| NewSpec {
            name,
            mode,
            group,
            owner,
            usage,
        })
}

fn creating() -> impl Strategy<Value = ItemSpec> {
    prop_oneof![
        14 => new_spec().prop_map(ItemSpec::Create),
        5 => (new_spec(), any::<u64>()).prop_map(|(s, b)| ItemSpec::Register(s, b)),
        3 => Just(ItemSpec::CreateBroken),
        3 => (key_to_use(), sometimes(30, any::<u8>()), any::<bool>()).prop_map(|(base, name, placeholder)| {
            // Now and then without base (the placeholder is never a base: a failure).
            let base = if placeholder && name.is_some() { Pick::Placeholder } else { base };
            ItemSpec::Derive { base, name }
        }),
        4 => pick().prop_map(ItemSpec::ReKey),
    ]
}

fn reading() -> impl Strategy<Value = ItemSpec> {
    prop_oneof![
        8 => any::<u8>().prop_map(ItemSpec::Locate),
        12 => (pick(), prop_oneof![3 => Just(None), 1 => key_to_use().prop_map(Some)])
            .prop_map(|(t, wrap)| ItemSpec::Get { t, wrap }),
        6 => pick().prop_map(ItemSpec::GetAttributes),
        3 => pick().prop_map(ItemSpec::GetKeyPolicy),
    ]
}

fn editing() -> impl Strategy<Value = ItemSpec> {
    prop_oneof![
        6 => (pick(), any::<u8>(), any::<u8>()).prop_map(|(t, attr, val)| ItemSpec::AddX { t, attr, val }),
        3 => (pick(), explicit()).prop_map(|(t, to)| ItemSpec::AddLink { t, to }),
        4 => (pick(), any::<u8>()).prop_map(|(t, name)| ItemSpec::AddName { t, name }),
        4 => (pick(), any::<u8>(), any::<u8>()).prop_map(|(t, pick, val)| ItemSpec::ModifyX { t, pick, val }),
        4 => (pick(), any::<u8>(), any::<bool>()).prop_map(|(t, pick, all)| ItemSpec::DeleteX { t, pick, all }),
        2 => (pick(), any::<u8>()).prop_map(|(t, pick)| ItemSpec::DeleteLink { t, pick }),
    ]
}

fn lifecycle() -> impl Strategy<Value = ItemSpec> {
    prop_oneof![
        8 => pick().prop_map(ItemSpec::Activate),
        5 => (pick(), any::<bool>()).prop_map(|(t, compromise)| ItemSpec::Revoke { t, compromise }),
        5 => pick().prop_map(ItemSpec::Destroy),
        4 => (pick(), sometimes(40, any::<u8>()), sometimes(40, any::<u8>()), sometimes(60, any::<u8>()))
            .prop_map(|(t, owner, group, mode)| ItemSpec::SetKeyPolicy { t, owner, group, mode }),
    ]
}

fn item() -> impl Strategy<Value = ItemSpec> {
    prop_oneof![29 => creating(), 29 => reading(), 23 => editing(), 22 => lifecycle()]
}

fn on_error() -> impl Strategy<Value = OnError> {
    prop_oneof![
        15 => Just(OnError::Default),
        20 => Just(OnError::Stop),
        35 => Just(OnError::Continue),
        30 => Just(OnError::Undo),
    ]
}

/// Mostly an administrator, sometimes anyone (who must be refused).
fn admin_or_anyone() -> impl Strategy<Value = u8> {
    prop_oneof![4 => 6u8..8, 1 => 0u8..8]
}

fn step() -> impl Strategy<Value = StepSpec> {
    let batch = (0u8..8, on_error(), prop::collection::vec(item(), 1..=6)).prop_map(
        |(who, on_error, items)| StepSpec::Batch {
            who,
            on_error,
            items,
        },
    );
    let set_account = (
        admin_or_anyone(),
        any::<bool>(),
        any::<u8>(),
        prop_oneof![52 => Just(None), 40 => Just(Some(true)), 8 => Just(Some(false))],
        sometimes(80, any::<u8>()),
    )
        .prop_map(|(who, user, name, enabled, ops)| StepSpec::SetAccount {
            who,
            user,
            name,
            enabled,
            ops,
        });
    let delete_account = (admin_or_anyone(), any::<bool>(), any::<u8>())
        .prop_map(|(who, user, name)| StepSpec::DeleteAccount { who, user, name });
    let authorize = (admin_or_anyone(), 0u8..8, any::<u8>(), any::<u8>()).prop_map(
        |(who, user, operation, minutes)| StepSpec::Authorize {
            who,
            user,
            operation,
            minutes,
        },
    );
    prop_oneof![
        84 => batch,
        6 => set_account,
        2 => delete_account,
        8 => authorize,
    ]
}

/// A reproducible source of steps: proptest's generators driven by a ChaCha RNG from `seed`.
pub struct Steps {
    runner: TestRunner,
}

impl Steps {
    pub fn new(seed: u64) -> Steps {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
        Steps {
            runner: TestRunner::new_with_rng(Config::default(), rng),
        }
    }

    /// The next random step.
    pub fn next_step(&mut self) -> StepSpec {
        step()
            .new_tree(&mut self.runner)
            .expect("the step strategy always generates")
            .current()
    }
}
