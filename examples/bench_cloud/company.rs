//! The company every cloud benchmark serves: deterministic, so runs compare. 50,000 users (2%
//! disabled), 2,000 groups of 25 to 500 direct members each; every tenth group also holds one
//! child group (for providers whose groups nest).

/// A person of the synthetic company.
#[derive(Clone, Debug)]
pub struct Person {
    /// A stable index; each provider turns it into its own id format.
    pub index: usize,
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    pub disabled: bool,
}

#[derive(Clone, Debug)]
pub struct Team {
    pub index: usize,
    pub name: String,
    /// Indices into `Company::people`.
    pub members: Vec<usize>,
    /// Indices into `Company::teams`.
    pub children: Vec<usize>,
}

#[derive(Clone, Debug)]
pub struct Company {
    pub people: Vec<Person>,
    pub teams: Vec<Team>,
}

/// A small deterministic generator (xorshift): no dependency for a benchmark's dice.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

impl Company {
    pub fn new(users: usize, groups: usize) -> Company {
        let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
        let people = (0..users)
            .map(|i| Person {
                index: i,
                email: format!("user{i:06}@corp.example"),
                given_name: format!("Given{i}"),
                family_name: format!("Family{i}"),
                disabled: i % 50 == 7,
            })
            .collect();
        let teams = (0..groups)
            .map(|g| {
                let size = 25 + dice.below(476);
                let start = dice.below(users.max(1));
                let members = (0..size.min(users)).map(|k| (start + k * 7) % users.max(1)).collect();
                let children = if g % 10 == 0 && g + 1 < groups {
                    vec![g + 1]
                } else {
                    Vec::new()
                };
                Team {
                    index: g,
                    name: format!("Team {g:04}"),
                    members,
                    children,
                }
            })
            .collect();
        Company { people, teams }
    }

    /// Direct memberships in all.
    pub fn memberships(&self) -> usize {
        self.teams.iter().map(|t| t.members.len()).sum()
    }
}
