//! `mnemo eval` on a translation run: the teacher-forced loss, token accuracy and perplexity of
//! its valid or test split, computed as the trainer computes them (each side cut to
//! `data.max_len` subwords, batches under `train.eval_max_tokens`), so the valid figures of a
//! finished run equal its `summary.json`'s.
use anyhow::bail;
use mnemo_train::translation::data::loss_pairs;
use mnemo_train::translation::evaluate_loss;
use serde_json::json;

use crate::eval_cmd::{EvalArgs, SplitArg};
use crate::run_kind;

/// Evaluate the translation run of `args` (see the [module docs](self)).
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    if args.split == SplitArg::Train {
        bail!("--split train: a translation run reloads its valid and test splits only");
    }
    for (flag, given) in [
        ("--eval-span", args.eval_span.is_some()),
        ("--mem-len", args.mem_len.is_some()),
    ] {
        if given {
            bail!(
                "{flag}: a translation run is evaluated sentence by sentence; {flag} applies to language models"
            );
        }
    }
    let loaded = run_kind::load_translation(&args.run_dir, "eval", &args.backend)?;
    let max_len = loaded.config.data.parallel().max_len;
    let pairs = loss_pairs(loaded.split(args.split.split()), max_len);
    let max_tokens = loaded.config.train.eval_max_tokens();
    let metrics = evaluate_loss(&loaded.model, &pairs, max_tokens, &loaded.device);
    let name = &loaded.trainer.model_name;
    let step = loaded.trainer.step;
    let ppl = metrics.lm_figure().map(|(_, value)| value);
    if args.json {
        let record = json!({
            "run_dir": args.run_dir,
            "model": name,
            "kind": "seq2seq",
            "decoder": loaded.model.decoder_kind(),
            "step": step,
            "split": args.split.name(),
            "loss": metrics.loss,
            "accuracy": metrics.accuracy,
            "scored": metrics.scored,
            "tokens": metrics.tokens,
            "ppl": ppl,
        });
        println!("{record}");
    } else {
        println!(
            "{name} (seq2seq, step {step}) on {}: ppl {:.4}, loss {:.4} nats, accuracy {:.2}% \
             over {} target subwords",
            args.split.name(),
            ppl.unwrap_or(f64::NAN),
            metrics.loss,
            100.0 * metrics.accuracy,
            metrics.scored,
        );
    }
    Ok(())
}
