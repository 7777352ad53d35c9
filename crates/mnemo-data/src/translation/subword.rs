//! A joint subword vocabulary for translation: byte-level BPE from the `tokenizers` crate.
//!
//! The pipeline is GPT-2's byte-level BPE (Radford et al. 2019; `tokenizers`'
//! `ByteLevelBPETokenizer` without a prefix space): no normaliser, the `ByteLevel`
//! pre-tokeniser (its regex splits words, numbers and punctuation, each keeping its leading
//! space, then maps every byte to one of 256 printable symbols), a BPE model whose initial
//! alphabet holds all 256 byte symbols, and the `ByteLevel` decoder. Every string therefore
//! encodes without `<unk>`, and decoding inverts encoding exactly (not only up to whitespace):
//! `decode(encode(s)) == s` for any `s`.
//!
//! Ids 0..=3 are the specials `<pad>`, `<unk>`, `<s>` (BOS) and `</s>` (EOS), as the rest of
//! mnemo's translation code assumes ([`SubwordTokenizer::PAD`] ...). Source and target share
//! one vocabulary, trained on both sides of the training split.
//!
//! Training is deterministic: `tokenizers`' BPE trainer sorts the alphabet and breaks ties
//! between equally frequent pairs by symbol ids, so the same texts give the same
//! `tokenizer.json`.

use std::path::Path;

use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, DecoderWrapper, PreTokenizerWrapper, Tokenizer};

use crate::DataError;

/// Config field (or argument) named by tokenizer-file errors.
const FIELD: &str = "tokenizer";

/// A trained byte-level BPE vocabulary with the four translation specials at ids 0..=3.
#[derive(Clone)]
pub struct SubwordTokenizer {
    inner: Tokenizer,
}

impl std::fmt::Debug for SubwordTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubwordTokenizer")
            .field("vocab_size", &self.vocab_size())
            .finish()
    }
}

impl SubwordTokenizer {
    /// Padding id (`<pad>`).
    pub const PAD: u32 = 0;
    /// Unknown-symbol id (`<unk>`; never produced by byte-level encoding).
    pub const UNK: u32 = 1;
    /// Beginning-of-sentence id (`<s>`), the first decoder input.
    pub const BOS: u32 = 2;
    /// End-of-sentence id (`</s>`), the last decoder target.
    pub const EOS: u32 = 3;
    /// The special tokens, in id order.
    pub const SPECIALS: [&'static str; 4] = ["<pad>", "<unk>", "<s>", "</s>"];
    /// Smallest vocabulary [`SubwordTokenizer::train`] accepts: the 4 specials, the 256 byte
    /// symbols and one merge.
    pub const MIN_VOCAB_SIZE: usize = 4 + 256 + 1;

    /// Learns a BPE vocabulary of at most `vocab_size` symbols (specials and the 256 byte
    /// symbols included) from `texts`; merges of pairs seen fewer than `min_frequency` times
    /// are not learnt, so small corpora give smaller vocabularies ([`Self::vocab_size`]).
    ///
    /// For a joint vocabulary pass both sides of the training pairs.
    pub fn train<S: AsRef<str> + Sync>(
        texts: &[S],
        vocab_size: usize,
        min_frequency: u64,
    ) -> Result<Self, DataError> {
        if vocab_size < Self::MIN_VOCAB_SIZE {
            return Err(DataError::InvalidArgument {
                name: "vocab_size",
                reason: format!(
                    "must be at least {} (4 specials + 256 byte symbols + 1 merge), got {vocab_size}",
                    Self::MIN_VOCAB_SIZE
                ),
            });
        }
        let specials = Self::SPECIALS
            .iter()
            .map(|s| AddedToken::from(*s, true))
            .collect();
        let mut trainer = TrainerWrapper::BpeTrainer(
            BpeTrainerBuilder::new()
                .vocab_size(vocab_size)
                .min_frequency(min_frequency)
                .special_tokens(specials)
                .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
                .show_progress(false)
                .build(),
        );
        let bpe = BPE::builder()
            .unk_token(Self::SPECIALS[Self::UNK as usize].to_owned())
            .build()
            .map_err(|e| DataError::InvalidVocab(format!("cannot build the BPE model: {e}")))?;
        let mut inner = Tokenizer::new(bpe);
        inner
            .with_pre_tokenizer(Some(ByteLevel::new(false, true, true)))
            .with_decoder(Some(ByteLevel::default()));
        inner
            .train(&mut trainer, texts.iter().map(|t| t.as_ref()))
            .map_err(|e| DataError::InvalidVocab(format!("BPE training failed: {e}")))?;
        let tokenizer = Self::wrap(inner);
        tokenizer
            .check()
            .map_err(|reason| DataError::InvalidVocab(format!("trained BPE: {reason}")))?;
        Ok(tokenizer)
    }

    /// Writes the vocabulary as a `tokenizers` `tokenizer.json` (pretty-printed), atomically
    /// (a temporary file next to `path`, then a rename).
    pub fn save(&self, path: &Path) -> Result<(), DataError> {
        let json = self
            .inner
            .to_string(true)
            .map_err(|e| DataError::file(FIELD, path, format!("cannot serialise: {e}")))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json).map_err(|e| DataError::io(FIELD, &tmp, &e))?;
        std::fs::rename(&tmp, path).map_err(|e| DataError::io(FIELD, path, &e))
    }

    /// Reads a `tokenizer.json` written by [`Self::save`].
    ///
    /// Errors name the file: unreadable, not a `tokenizers` JSON, or not this pipeline
    /// (a byte-level BPE with `<unk>` and the specials at ids 0..=3, no normaliser, truncation
    /// or padding).
    pub fn load(path: &Path) -> Result<Self, DataError> {
        let json = std::fs::read_to_string(path).map_err(|e| DataError::io(FIELD, path, &e))?;
        let inner: Tokenizer = json.parse().map_err(|e| {
            DataError::file(FIELD, path, format!("not a valid tokenizer.json: {e}"))
        })?;
        let tokenizer = Self::wrap(inner);
        tokenizer
            .check()
            .map_err(|reason| DataError::file(FIELD, path, reason))?;
        Ok(tokenizer)
    }

    /// Wraps a `tokenizers` pipeline, making the special names in input text ordinary text:
    /// a literal `</s>` in a sentence is encoded byte by byte, never as EOS.
    fn wrap(mut inner: Tokenizer) -> Self {
        inner.set_encode_special_tokens(true);
        Self { inner }
    }

    /// Checks the invariants [`Self::encode`] and [`Self::decode`] rely on.
    fn check(&self) -> Result<(), String> {
        for (id, name) in Self::SPECIALS.iter().enumerate() {
            let got = self.inner.token_to_id(name);
            if got != Some(id as u32) {
                return Err(format!(
                    "special token {name} must have id {id}, has {got:?}"
                ));
            }
        }
        match self.inner.get_model() {
            ModelWrapper::BPE(bpe) if bpe.unk_token.as_deref() == Some("<unk>") => {}
            ModelWrapper::BPE(_) => return Err("the BPE model must have unk_token <unk>".into()),
            _ => return Err("the model must be BPE".into()),
        }
        if !matches!(
            self.inner.get_pre_tokenizer(),
            Some(PreTokenizerWrapper::ByteLevel(_))
        ) {
            return Err("the pre-tokenizer must be ByteLevel".into());
        }
        if !matches!(self.inner.get_decoder(), Some(DecoderWrapper::ByteLevel(_))) {
            return Err("the decoder must be ByteLevel".into());
        }
        if self.inner.get_normalizer().is_some() {
            return Err("a normalizer is not supported (decoding would not invert it)".into());
        }
        if self.inner.get_truncation().is_some() || self.inner.get_padding().is_some() {
            return Err("truncation and padding must be off (batching pads)".into());
        }
        Ok(())
    }

    /// Number of ids (specials included); every id from [`Self::encode`] is below it.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The subword ids of `text`, without BOS or EOS. Special names written in `text`
    /// (`<s>`, `</s>`, ...) are ordinary characters, never special ids.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.inner
            .encode_fast(text, false)
            .expect("byte-level BPE with <unk> cannot fail to encode (checked at load)")
            .get_ids()
            .to_vec()
    }

    /// [`Self::encode`] of each text, in parallel (rayon); same results in the same order.
    pub fn encode_batch<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Vec<Vec<u32>> {
        let inputs: Vec<&str> = texts.iter().map(|t| t.as_ref()).collect();
        self.inner
            .encode_batch_fast(inputs, false)
            .expect("byte-level BPE with <unk> cannot fail to encode (checked at load)")
            .iter()
            .map(|e| e.get_ids().to_vec())
            .collect()
    }

    /// The text of `ids`: specials (PAD, UNK, BOS, EOS) and ids outside the vocabulary are
    /// skipped; byte sequences that are not UTF-8 (a cut multi-byte character) decode to
    /// U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner
            .decode(ids, true)
            .expect("the ByteLevel decoder cannot fail (checked at load)")
    }

    /// The symbol of `id` (byte-level form, `Ġ` standing for a space), if it exists.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }
}
