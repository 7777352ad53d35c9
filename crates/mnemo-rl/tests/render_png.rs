//! Renderings: the PNG strip of an episode decodes (CRCs and zlib checked by the decoder) to
//! the expected size and colours; ASCII frames of both environments.
use mnemo_rl::env::{Env, Maze, MazeConfig, TMaze, TMazeConfig, env_rng};
use mnemo_rl::render::{Frame, StripOptions, Tile, ascii_episode, png_strip, strip_image};

fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

#[test]
fn maze_episode_strip_decodes_to_the_drawn_image() {
    let config = MazeConfig {
        size: 9,
        view: 3,
        max_steps: 10,
    };
    let mut env = Maze::new(&config, env_rng(0, 0));
    let mut frames = vec![env.frame()];
    for t in 0..9 {
        env.step(t % 3);
        frames.push(env.frame());
    }
    let options = StripOptions {
        cell_px: 6,
        columns: 4,
        gap_px: 2,
    };
    let bytes = png_strip(&frames, options).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let (w, h, pixels) = decode(&bytes);
    assert_eq!((w, h), (4 * 54 + 5 * 2, 3 * 54 + 4 * 2));
    assert_eq!(pixels, strip_image(&frames, options).data);
}

#[test]
fn ascii_frames_show_agent_goal_and_cue() {
    let mut env = Maze::new(&MazeConfig::default(), env_rng(1, 0));
    let text = env.frame().ascii();
    assert_eq!(text.lines().count(), 9);
    assert_eq!(text.matches('G').count(), 1);
    assert_eq!(text.chars().filter(|c| "^>v<".contains(*c)).count(), 1);
    env.step(2);

    let mut tmaze = TMaze::new(&TMazeConfig::default(), env_rng(1, 0));
    let first = tmaze.frame();
    let cue = first.get(0, 2);
    assert!(matches!(cue, Tile::Cue(_)));
    tmaze.step(1);
    let second = tmaze.frame();
    assert_eq!(second.get(0, 2), Tile::Wall, "the cue is gone after step 0");
    let episode = ascii_episode(&[first, second], &["t=0 start".into()]);
    assert!(episode.starts_with("t=0 start\n"));
    assert!(episode.contains("\nt=1\n"));
}

#[test]
fn single_frame_png_has_exact_size() {
    let frame = Frame::new(3, 2, Tile::Goal);
    let options = StripOptions {
        cell_px: 1,
        columns: 1,
        gap_px: 0,
    };
    let (w, h, pixels) = decode(&png_strip(&[frame], options).unwrap());
    assert_eq!((w, h), (3, 2));
    assert_eq!(&pixels[..3], &[60, 190, 75]);
}
