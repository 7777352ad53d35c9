//! A run reloaded from disk decodes step by step exactly as it scores a segment in parallel.
mod common;

use burn::tensor::{Int, Tensor, TensorData};
use common::{config, max_abs_diff, options, tiny_toml, trained};
use mnemo_train::{GenerateConfig, generate};

#[test]
fn generation_from_a_checkpoint_reproduces_teacher_forced_logits() {
    let config = config(&tiny_toml("steps = 3\nlog_every = 1", 3e-3, 0.1));
    let out = tempfile::tempdir().unwrap();
    for name in ["feedback", "transformer"] {
        let run = trained(&config, name, &options(out.path()));
        assert_eq!(run.model.kind(), name);

        // 24 tokens: longer than both spans (8 and 16), so the windows slide.
        let prompt: Vec<u32> = run.data.valid.inputs[..24].to_vec();
        let generation = generate(
            &run.model,
            &prompt,
            &GenerateConfig {
                max_new_tokens: 5,
                temperature: 0.0,
                seed: 1,
            },
            &run.device,
        )
        .unwrap();
        assert_eq!(generation.generated.len(), 5);

        let ids: Vec<i64> = prompt.iter().map(|&t| i64::from(t)).collect();
        let tokens =
            Tensor::<2, Int>::from_data(TensorData::new(ids, [1, prompt.len()]), &run.device);
        let state = run.model.init_state(1, &run.device);
        let logits = run.model.forward_segment(tokens, state).logits; // [1, T, V]
        let parallel: Vec<f32> = logits.into_data().iter::<f32>().collect();
        let stepped: Vec<f32> = generation.prompt_logits.concat();
        let diff = max_abs_diff(&parallel, &stepped);
        assert!(diff < 1e-4, "{name}: step-by-step logits differ by {diff}");

        // Greedy decoding is the argmax of the logits, and seeded sampling repeats itself.
        let v = run.vocab.len();
        for (t, &p) in generation.prompt_predictions.iter().enumerate() {
            assert_eq!(
                p,
                mnemo_train::generate::argmax(&parallel[t * v..(t + 1) * v])
            );
        }
        let sampled = |seed| {
            generate(
                &run.model,
                &prompt,
                &GenerateConfig {
                    max_new_tokens: 8,
                    temperature: 1.0,
                    seed,
                },
                &run.device,
            )
            .unwrap()
            .generated
        };
        assert_eq!(sampled(3), sampled(3));
    }
}
