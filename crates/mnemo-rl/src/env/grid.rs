//! Square wall/floor grids, positions and compass headings; random perfect mazes by the
//! recursive backtracker (depth-first search over the odd cells).
//!
//! A maze of odd `size` has its rooms at odd coordinates `(1, 1), (1, 3), …, (size-2, size-2)`;
//! the border and the even/even cells are walls, and the generator knocks out the wall between
//! two rooms each time the search moves from one to the other. Every room is visited once, so
//! the floor is connected and the maze is a tree (no loops).
use rand::Rng;
use serde::{Deserialize, Serialize};

/// A cell position: `x` grows to the east (columns), `y` to the south (rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Pos {
    /// Column.
    pub x: i32,
    /// Row.
    pub y: i32,
}

impl Pos {
    /// The position at `(x, y)`.
    pub const fn new(x: i32, y: i32) -> Self {
        Self { x, y }
    }

    /// The neighbouring cell in direction `heading`.
    pub fn ahead(self, heading: Heading) -> Self {
        let (dx, dy) = heading.delta();
        Self::new(self.x + dx, self.y + dy)
    }
}

/// A compass heading; the discriminant is its index in one-hot codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Heading {
    /// Up (towards row 0).
    North = 0,
    /// Right (towards larger columns).
    East = 1,
    /// Down.
    South = 2,
    /// Left.
    West = 3,
}

impl Heading {
    /// All four, in index order.
    pub const ALL: [Heading; 4] = [Heading::North, Heading::East, Heading::South, Heading::West];

    /// The heading with index `i % 4`.
    pub fn from_index(i: usize) -> Self {
        Self::ALL[i % 4]
    }

    /// Its index (North 0, East 1, South 2, West 3).
    pub fn index(self) -> usize {
        self as usize
    }

    /// One step in this direction as `(dx, dy)`.
    pub fn delta(self) -> (i32, i32) {
        match self {
            Heading::North => (0, -1),
            Heading::East => (1, 0),
            Heading::South => (0, 1),
            Heading::West => (-1, 0),
        }
    }

    /// A quarter turn clockwise.
    pub fn right(self) -> Self {
        Self::from_index(self.index() + 1)
    }

    /// A quarter turn anticlockwise.
    pub fn left(self) -> Self {
        Self::from_index(self.index() + 3)
    }
}

/// A square grid of walls and floor, row-major.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grid {
    size: usize,
    /// `walls[y * size + x]`.
    walls: Vec<bool>,
}

impl Grid {
    /// A grid of `size × size` walls.
    pub fn filled(size: usize) -> Self {
        Self {
            size,
            walls: vec![true; size * size],
        }
    }

    /// A random perfect maze of odd `size >= 3` (see the module docs), drawn from `rng`.
    ///
    /// # Panics
    /// If `size` is even or below 3.
    pub fn maze<R: Rng + ?Sized>(size: usize, rng: &mut R) -> Self {
        assert!(
            size >= 3 && size % 2 == 1,
            "maze size must be odd and >= 3, got {size}"
        );
        let mut grid = Self::filled(size);
        let rooms = (size - 1) / 2; // rooms per side
        let room = |i: usize| Pos::new((2 * (i % rooms) + 1) as i32, (2 * (i / rooms) + 1) as i32);
        let mut visited = vec![false; rooms * rooms];
        let first = rng.random_range(0..rooms * rooms);
        visited[first] = true;
        grid.set_wall(room(first), false);
        let mut stack = vec![first];
        let mut options = Vec::with_capacity(4);
        while let Some(&current) = stack.last() {
            let (rx, ry) = (current % rooms, current / rooms);
            options.clear();
            if ry > 0 && !visited[current - rooms] {
                options.push(current - rooms);
            }
            if rx + 1 < rooms && !visited[current + 1] {
                options.push(current + 1);
            }
            if ry + 1 < rooms && !visited[current + rooms] {
                options.push(current + rooms);
            }
            if rx > 0 && !visited[current - 1] {
                options.push(current - 1);
            }
            if options.is_empty() {
                stack.pop();
                continue;
            }
            let next = options[rng.random_range(0..options.len())];
            let (a, b) = (room(current), room(next));
            grid.set_wall(Pos::new((a.x + b.x) / 2, (a.y + b.y) / 2), false);
            grid.set_wall(b, false);
            visited[next] = true;
            stack.push(next);
        }
        grid
    }

    /// Side length.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether `pos` lies inside the grid.
    pub fn contains(&self, pos: Pos) -> bool {
        (0..self.size as i32).contains(&pos.x) && (0..self.size as i32).contains(&pos.y)
    }

    /// Whether `pos` is a wall; cells outside the grid count as walls.
    pub fn is_wall(&self, pos: Pos) -> bool {
        !self.contains(pos) || self.walls[pos.y as usize * self.size + pos.x as usize]
    }

    /// Make `pos` a wall or floor.
    ///
    /// # Panics
    /// If `pos` is outside the grid.
    pub fn set_wall(&mut self, pos: Pos, wall: bool) {
        assert!(
            self.contains(pos),
            "{pos:?} outside a {0}x{0} grid",
            self.size
        );
        self.walls[pos.y as usize * self.size + pos.x as usize] = wall;
    }

    /// All floor cells, row-major.
    pub fn floor_cells(&self) -> Vec<Pos> {
        let n = self.size as i32;
        (0..n)
            .flat_map(|y| (0..n).map(move |x| Pos::new(x, y)))
            .filter(|&p| !self.is_wall(p))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn turns_compose() {
        for h in Heading::ALL {
            assert_eq!(h.left().right(), h);
            assert_eq!(h.right().right().right().right(), h);
            let (dx, dy) = h.delta();
            let (rx, ry) = h.right().delta();
            assert_eq!(dx * rx + dy * ry, 0, "right is perpendicular");
            // Clockwise on a y-down grid: right of north is east.
            assert_eq!(dx * ry - dy * rx, 1);
        }
    }

    #[test]
    fn maze_is_a_tree_over_the_rooms() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for size in [3, 5, 9, 15] {
            let grid = Grid::maze(size, &mut rng);
            let rooms = ((size - 1) / 2).pow(2);
            // A spanning tree of `rooms` rooms opens `rooms - 1` passages.
            assert_eq!(grid.floor_cells().len(), 2 * rooms - 1, "size {size}");
            for i in 0..size as i32 {
                for edge in [Pos::new(i, 0), Pos::new(0, i), Pos::new(i, size as i32 - 1)] {
                    assert!(grid.is_wall(edge));
                }
            }
        }
    }
}
