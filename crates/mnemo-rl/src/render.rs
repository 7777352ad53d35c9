//! Pictures of environment states: a [`Frame`] is a grid of [`Tile`]s that every environment
//! produces ([`crate::env::Env::frame`]); this file turns frames into ASCII text and into a PNG
//! strip of an episode (frames left to right, wrapped into rows).
//!
//! | tile | ASCII | colour |
//! |---|---|---|
//! | outside the map | ` ` | near black |
//! | wall | `#` | slate |
//! | floor | `.` | light grey |
//! | goal | `G` | green |
//! | cue (T-maze, step 0 only) | `U` up / `D` down | orange |
//! | agent | `^ > v <` by heading, `@` without one | red, heading side darker |
//!
//! In the PNG, cells outside the agent's view (`Frame::lit` false) are dimmed.
use crate::env::Heading;

/// What one cell of a [`Frame`] shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tile {
    /// Outside the map.
    Void,
    /// A wall.
    Wall,
    /// Walkable floor.
    Floor,
    /// The goal.
    Goal,
    /// A cue pointing north (up) or south (down).
    Cue(Heading),
    /// The agent, with its heading if it has one.
    Agent(Option<Heading>),
}

impl Tile {
    /// The ASCII character of this tile (see the module table).
    pub fn ascii(self) -> char {
        match self {
            Tile::Void => ' ',
            Tile::Wall => '#',
            Tile::Floor => '.',
            Tile::Goal => 'G',
            Tile::Cue(Heading::South) => 'D',
            Tile::Cue(_) => 'U',
            Tile::Agent(None) => '@',
            Tile::Agent(Some(Heading::North)) => '^',
            Tile::Agent(Some(Heading::East)) => '>',
            Tile::Agent(Some(Heading::South)) => 'v',
            Tile::Agent(Some(Heading::West)) => '<',
        }
    }

    fn rgb(self) -> [u8; 3] {
        match self {
            Tile::Void => [16, 16, 20],
            Tile::Wall => [70, 74, 92],
            Tile::Floor => [225, 225, 218],
            Tile::Goal => [60, 190, 75],
            Tile::Cue(_) => [240, 160, 40],
            Tile::Agent(_) => [215, 50, 45],
        }
    }
}

/// A god's-eye picture of an environment state.
///
/// # Shapes
/// - `tiles`, `lit`: `[height * width]`, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// The cells, row-major.
    pub tiles: Vec<Tile>,
    /// Whether each cell is inside the agent's current field of view.
    pub lit: Vec<bool>,
}

impl Frame {
    /// A `width × height` frame of `fill`, all lit.
    pub fn new(width: usize, height: usize, fill: Tile) -> Self {
        Self {
            width,
            height,
            tiles: vec![fill; width * height],
            lit: vec![true; width * height],
        }
    }

    /// The tile at column `x`, row `y`.
    pub fn get(&self, x: usize, y: usize) -> Tile {
        self.tiles[y * self.width + x]
    }

    /// Set the tile at column `x`, row `y`.
    pub fn set(&mut self, x: usize, y: usize, tile: Tile) {
        self.tiles[y * self.width + x] = tile;
    }

    /// The frame as text: one line per row, each ending in `\n`.
    pub fn ascii(&self) -> String {
        let mut out = String::with_capacity((self.width + 1) * self.height);
        for row in self.tiles.chunks(self.width.max(1)) {
            out.extend(row.iter().map(|t| t.ascii()));
            out.push('\n');
        }
        out
    }
}

/// An 8-bit RGB image.
///
/// # Shapes
/// - `data`: `[height, width, 3]`, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// The pixels.
    pub data: Vec<u8>,
}

impl RgbImage {
    /// A `width × height` image of one colour.
    pub fn new(width: usize, height: usize, rgb: [u8; 3]) -> Self {
        Self {
            width,
            height,
            data: rgb.repeat(width * height),
        }
    }

    /// Colour a `w × h` rectangle whose top-left pixel is `(x, y)` (clipped to the image).
    pub fn fill_rect(&mut self, x: usize, y: usize, w: usize, h: usize, rgb: [u8; 3]) {
        for py in y..(y + h).min(self.height) {
            for px in x..(x + w).min(self.width) {
                let i = 3 * (py * self.width + px);
                self.data[i..i + 3].copy_from_slice(&rgb);
            }
        }
    }

    /// Encode as a PNG file (8-bit RGB, no interlacing).
    pub fn to_png(&self) -> Result<Vec<u8>, png::EncodingError> {
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, self.width as u32, self.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&self.data)?;
        writer.finish()?;
        Ok(bytes)
    }
}

/// Layout of a PNG strip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StripOptions {
    /// Pixels per cell side (>= 1; the heading mark needs >= 4).
    pub cell_px: usize,
    /// Frames per row of the strip before wrapping (>= 1).
    pub columns: usize,
    /// Pixels of background between frames.
    pub gap_px: usize,
}

impl Default for StripOptions {
    fn default() -> Self {
        Self {
            cell_px: 8,
            columns: 16,
            gap_px: 4,
        }
    }
}

const BACKGROUND: [u8; 3] = [255, 255, 255];

fn dim(rgb: [u8; 3]) -> [u8; 3] {
    rgb.map(|c| (c as u16 * 5 / 8) as u8)
}

/// Draw `frame` with its top-left corner at pixel `(x0, y0)` of `image`, `cell` pixels a cell.
fn draw(image: &mut RgbImage, frame: &Frame, x0: usize, y0: usize, cell: usize) {
    for y in 0..frame.height {
        for x in 0..frame.width {
            let tile = frame.get(x, y);
            let shade = |rgb| {
                if frame.lit[y * frame.width + x] {
                    rgb
                } else {
                    dim(rgb)
                }
            };
            let (px, py) = (x0 + x * cell, y0 + y * cell);
            image.fill_rect(px, py, cell, cell, shade(tile.rgb()));
            if let Tile::Agent(Some(heading)) = tile {
                // A dark bar on the side the agent faces.
                let bar = (cell / 4).max(1);
                let (bx, by, bw, bh) = match heading {
                    Heading::North => (px, py, cell, bar),
                    Heading::South => (px, py + cell - bar, cell, bar),
                    Heading::West => (px, py, bar, cell),
                    Heading::East => (px + cell - bar, py, bar, cell),
                };
                image.fill_rect(bx, by, bw, bh, shade([90, 10, 10]));
            }
        }
    }
}

/// The frames of an episode side by side, `options.columns` per row, as one image.
///
/// Frames may differ in size: each slot is as large as the largest frame.
pub fn strip_image(frames: &[Frame], options: StripOptions) -> RgbImage {
    let cell = options.cell_px.max(1);
    let columns = options.columns.max(1);
    let gap = options.gap_px;
    let slot_w = frames.iter().map(|f| f.width).max().unwrap_or(0) * cell;
    let slot_h = frames.iter().map(|f| f.height).max().unwrap_or(0) * cell;
    let cols = frames.len().clamp(1, columns);
    let rows = frames.len().div_ceil(columns).max(1);
    let width = cols * slot_w + (cols + 1) * gap;
    let height = rows * slot_h + (rows + 1) * gap;
    let mut image = RgbImage::new(width.max(1), height.max(1), BACKGROUND);
    for (i, frame) in frames.iter().enumerate() {
        let x0 = gap + (i % columns) * (slot_w + gap);
        let y0 = gap + (i / columns) * (slot_h + gap);
        draw(&mut image, frame, x0, y0, cell);
    }
    image
}

/// [`strip_image`] encoded as PNG bytes.
pub fn png_strip(frames: &[Frame], options: StripOptions) -> Result<Vec<u8>, png::EncodingError> {
    strip_image(frames, options).to_png()
}

/// The frames of an episode as text, one block per frame under a caption line
/// (`captions[i]`, e.g. `"t=3 action=forward reward=0"`; missing captions print `t=i`).
pub fn ascii_episode(frames: &[Frame], captions: &[String]) -> String {
    let mut out = String::new();
    for (i, frame) in frames.iter().enumerate() {
        match captions.get(i) {
            Some(caption) => out.push_str(caption),
            None => out.push_str(&format!("t={i}")),
        }
        out.push('\n');
        out.push_str(&frame.ascii());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_rows_and_agent_arrows() {
        let mut frame = Frame::new(3, 2, Tile::Wall);
        frame.set(1, 0, Tile::Agent(Some(Heading::East)));
        frame.set(2, 1, Tile::Goal);
        assert_eq!(frame.ascii(), "#>#\n##G\n");
    }

    #[test]
    fn strip_layout_wraps_rows() {
        let frames = vec![Frame::new(3, 2, Tile::Floor); 5];
        let options = StripOptions {
            cell_px: 4,
            columns: 2,
            gap_px: 1,
        };
        let image = strip_image(&frames, options);
        assert_eq!(image.width, 2 * 12 + 3);
        assert_eq!(image.height, 3 * 8 + 4);
        assert_eq!(image.data.len(), image.width * image.height * 3);
        // The gap pixel is background, the first cell's pixel is floor.
        assert_eq!(&image.data[0..3], &BACKGROUND);
        let i = 3 * (image.width + 1);
        assert_eq!(&image.data[i..i + 3], &Tile::Floor.rgb());
    }
}
