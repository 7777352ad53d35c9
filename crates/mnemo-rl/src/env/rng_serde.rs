//! Serde for an environment's [`ChaCha8Rng`] as plain integers: seed, stream and word position
//! (split into two `u64`, since JSON through internally tagged enums and TOML cannot carry
//! rand_chacha's own `u128`). Restoring continues the exact same random sequence.
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RngState {
    seed: [u8; 32],
    stream: u64,
    /// Word position `[high 64 bits, low 64 bits]`.
    word_pos: [u64; 2],
}

/// `#[serde(serialize_with)]` for a [`ChaCha8Rng`].
pub(crate) fn serialize<S: Serializer>(rng: &ChaCha8Rng, s: S) -> Result<S::Ok, S::Error> {
    let pos = rng.get_word_pos();
    RngState {
        seed: rng.get_seed(),
        stream: rng.get_stream(),
        word_pos: [(pos >> 64) as u64, pos as u64],
    }
    .serialize(s)
}

/// `#[serde(deserialize_with)]` for a [`ChaCha8Rng`].
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ChaCha8Rng, D::Error> {
    let state = RngState::deserialize(d)?;
    let mut rng = ChaCha8Rng::from_seed(state.seed);
    rng.set_stream(state.stream);
    rng.set_word_pos(((state.word_pos[0] as u128) << 64) | state.word_pos[1] as u128);
    Ok(rng)
}
