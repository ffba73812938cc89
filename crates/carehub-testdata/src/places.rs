//! Places for synthetic addresses and organisation names.
//!
//! Towns are real English towns and cities paired with their real postcode area and a few of its
//! real district numbers, so that a generated postcode (`LS6 2QT`) is in the right format *and*
//! points at the right part of the country, which is what makes data look believable to people
//! testing by eye. Street and organisation names are made-up combinations of common words.

/// A town, its postcode area, and district numbers that exist in that area.
#[derive(Debug)]
pub(crate) struct Town {
    pub(crate) name: &'static str,
    pub(crate) postcode_area: &'static str,
    pub(crate) districts: &'static [u8],
}

pub(crate) const TOWNS: [Town; 60] = [
    Town {
        name: "Leeds",
        postcode_area: "LS",
        districts: &[
            1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 25, 26, 27, 28,
        ],
    },
    Town {
        name: "Bradford",
        postcode_area: "BD",
        districts: &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 18],
    },
    Town {
        name: "Sheffield",
        postcode_area: "S",
        districts: &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 17, 20],
    },
    Town {
        name: "Manchester",
        postcode_area: "M",
        districts: &[
            1, 2, 3, 4, 8, 9, 11, 12, 13, 14, 15, 16, 18, 19, 20, 21, 22, 23, 40,
        ],
    },
    Town {
        name: "Liverpool",
        postcode_area: "L",
        districts: &[
            1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 24, 25,
        ],
    },
    Town {
        name: "Birmingham",
        postcode_area: "B",
        districts: &[
            1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 23, 24, 25,
            26, 27, 28, 29, 30, 31,
        ],
    },
    Town {
        name: "Bristol",
        postcode_area: "BS",
        districts: &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16],
    },
    Town {
        name: "Newcastle upon Tyne",
        postcode_area: "NE",
        districts: &[1, 2, 3, 4, 5, 6, 7, 12, 13, 15],
    },
    Town {
        name: "Nottingham",
        postcode_area: "NG",
        districts: &[1, 2, 3, 5, 6, 7, 8, 9, 11],
    },
    Town {
        name: "Leicester",
        postcode_area: "LE",
        districts: &[1, 2, 3, 4, 5],
    },
    Town {
        name: "York",
        postcode_area: "YO",
        districts: &[1, 10, 23, 24, 26, 30, 31],
    },
    Town {
        name: "Kingston upon Hull",
        postcode_area: "HU",
        districts: &[1, 2, 3, 4, 5, 6, 7, 8, 9],
    },
    Town {
        name: "Norwich",
        postcode_area: "NR",
        districts: &[1, 2, 3, 4, 5, 6, 7],
    },
    Town {
        name: "Cambridge",
        postcode_area: "CB",
        districts: &[1, 2, 3, 4, 5],
    },
    Town {
        name: "Oxford",
        postcode_area: "OX",
        districts: &[1, 2, 3, 4],
    },
    Town {
        name: "Reading",
        postcode_area: "RG",
        districts: &[1, 2, 4, 5, 6],
    },
    Town {
        name: "Southampton",
        postcode_area: "SO",
        districts: &[14, 15, 16, 17, 18, 19],
    },
    Town {
        name: "Portsmouth",
        postcode_area: "PO",
        districts: &[1, 2, 3, 4, 5, 6],
    },
    Town {
        name: "Plymouth",
        postcode_area: "PL",
        districts: &[1, 2, 3, 4, 5, 6, 7, 9],
    },
    Town {
        name: "Exeter",
        postcode_area: "EX",
        districts: &[1, 2, 4],
    },
    Town {
        name: "Derby",
        postcode_area: "DE",
        districts: &[1, 3, 21, 22, 23, 24],
    },
    Town {
        name: "Stoke-on-Trent",
        postcode_area: "ST",
        districts: &[1, 2, 3, 4, 6],
    },
    Town {
        name: "Coventry",
        postcode_area: "CV",
        districts: &[1, 2, 3, 4, 5, 6],
    },
    Town {
        name: "Wolverhampton",
        postcode_area: "WV",
        districts: &[1, 2, 3, 4, 6, 10, 11, 14],
    },
    Town {
        name: "Preston",
        postcode_area: "PR",
        districts: &[1, 2],
    },
    Town {
        name: "Blackpool",
        postcode_area: "FY",
        districts: &[1, 2, 3, 4],
    },
    Town {
        name: "Lancaster",
        postcode_area: "LA",
        districts: &[1],
    },
    Town {
        name: "Carlisle",
        postcode_area: "CA",
        districts: &[1, 2, 3],
    },
    Town {
        name: "Durham",
        postcode_area: "DH",
        districts: &[1],
    },
    Town {
        name: "Sunderland",
        postcode_area: "SR",
        districts: &[1, 2, 3, 4, 5, 6],
    },
    Town {
        name: "Middlesbrough",
        postcode_area: "TS",
        districts: &[1, 3, 4, 5, 7],
    },
    Town {
        name: "Doncaster",
        postcode_area: "DN",
        districts: &[1, 2, 4, 5],
    },
    Town {
        name: "Wakefield",
        postcode_area: "WF",
        districts: &[1, 2],
    },
    Town {
        name: "Huddersfield",
        postcode_area: "HD",
        districts: &[1, 2, 3, 4, 5],
    },
    Town {
        name: "Halifax",
        postcode_area: "HX",
        districts: &[1, 2, 3],
    },
    Town {
        name: "Harrogate",
        postcode_area: "HG",
        districts: &[1, 2, 3],
    },
    Town {
        name: "Lincoln",
        postcode_area: "LN",
        districts: &[1, 2, 5, 6],
    },
    Town {
        name: "Peterborough",
        postcode_area: "PE",
        districts: &[1, 2, 3, 4, 7],
    },
    Town {
        name: "Ipswich",
        postcode_area: "IP",
        districts: &[1, 2, 3, 4],
    },
    Town {
        name: "Colchester",
        postcode_area: "CO",
        districts: &[1, 2, 3, 4],
    },
    Town {
        name: "Chelmsford",
        postcode_area: "CM",
        districts: &[1, 2],
    },
    Town {
        name: "Brighton",
        postcode_area: "BN",
        districts: &[1, 2, 3],
    },
    Town {
        name: "Canterbury",
        postcode_area: "CT",
        districts: &[1, 2],
    },
    Town {
        name: "Bath",
        postcode_area: "BA",
        districts: &[1, 2],
    },
    Town {
        name: "Gloucester",
        postcode_area: "GL",
        districts: &[1, 2, 3, 4],
    },
    Town {
        name: "Worcester",
        postcode_area: "WR",
        districts: &[1, 2, 3, 4, 5],
    },
    Town {
        name: "Hereford",
        postcode_area: "HR",
        districts: &[1, 2, 4],
    },
    Town {
        name: "Shrewsbury",
        postcode_area: "SY",
        districts: &[1, 2, 3],
    },
    Town {
        name: "Chester",
        postcode_area: "CH",
        districts: &[1, 2, 3, 4],
    },
    Town {
        name: "Warrington",
        postcode_area: "WA",
        districts: &[1, 2, 4, 5],
    },
    Town {
        name: "Bolton",
        postcode_area: "BL",
        districts: &[1, 2, 3],
    },
    Town {
        name: "Salisbury",
        postcode_area: "SP",
        districts: &[1, 2],
    },
    Town {
        name: "Bournemouth",
        postcode_area: "BH",
        districts: &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    },
    Town {
        name: "Northampton",
        postcode_area: "NN",
        districts: &[1, 2, 3, 4, 5],
    },
    Town {
        name: "Milton Keynes",
        postcode_area: "MK",
        districts: &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    },
    Town {
        name: "Luton",
        postcode_area: "LU",
        districts: &[1, 2, 3, 4],
    },
    Town {
        name: "Swindon",
        postcode_area: "SN",
        districts: &[1, 2, 3, 5],
    },
    Town {
        name: "Truro",
        postcode_area: "TR",
        districts: &[1],
    },
    Town {
        name: "Taunton",
        postcode_area: "TA",
        districts: &[1, 2],
    },
    Town {
        name: "Blackburn",
        postcode_area: "BB",
        districts: &[1, 2],
    },
];

/// First words of street names.
pub(crate) const STREET_STEMS: [&str; 81] = [
    "Church",
    "Station",
    "Victoria",
    "Park",
    "Mill",
    "Oak",
    "Manor",
    "Queen",
    "King",
    "High",
    "Green",
    "Chapel",
    "School",
    "Albert",
    "Grange",
    "Springfield",
    "Windsor",
    "York",
    "Meadow",
    "Orchard",
    "Beech",
    "Elm",
    "Willow",
    "Cedar",
    "Ash",
    "Hawthorn",
    "Holly",
    "Rose",
    "Cherry",
    "Maple",
    "Birch",
    "Chestnut",
    "Poplar",
    "Laburnum",
    "Lime",
    "Sycamore",
    "Hazel",
    "Rowan",
    "Heather",
    "Primrose",
    "Bridge",
    "Castle",
    "Abbey",
    "Market",
    "North",
    "South",
    "West",
    "East",
    "New",
    "Mount",
    "Hill",
    "Valley",
    "Brook",
    "River",
    "Canal",
    "Forest",
    "Moor",
    "Field",
    "Farm",
    "Westfield",
    "Highfield",
    "Fairfield",
    "Coronation",
    "Jubilee",
    "Alexandra",
    "Stanley",
    "Cromwell",
    "Nelson",
    "Wellington",
    "Trafalgar",
    "Milton",
    "Shakespeare",
    "Byron",
    "Tennyson",
    "Cavendish",
    "Grosvenor",
    "Clarence",
    "Edward",
    "George",
    "Princess",
    "Regent",
];

/// Street types.
pub(crate) const STREET_SUFFIXES: [&str; 15] = [
    "Road", "Street", "Lane", "Avenue", "Close", "Drive", "Way", "Crescent", "Gardens", "Grove",
    "Place", "Terrace", "Court", "View", "Walk",
];

/// First words of GP practice names.
pub(crate) const PRACTICE_STEMS: [&str; 50] = [
    "Oakfield",
    "Riverside",
    "Parkside",
    "Beechwood",
    "Meadowbank",
    "Elm Tree",
    "Willow Bank",
    "Ash Grove",
    "Church View",
    "Market Square",
    "Station Road",
    "Castle",
    "Abbey",
    "Priory",
    "Cedar House",
    "Larchwood",
    "Hawthorn",
    "Kingsway",
    "Queensway",
    "Northgate",
    "Southgate",
    "Westgate",
    "Eastgate",
    "Fieldhouse",
    "Greenbank",
    "Hillside",
    "Brookside",
    "Millbrook",
    "Stonebridge",
    "Woodlands",
    "Valley",
    "Moorland",
    "Heathfield",
    "Rosemount",
    "Springfield",
    "Fairfield",
    "Highfield",
    "Lakeside",
    "Bridgewater",
    "Manor",
    "Orchard",
    "Chapel Street",
    "Canal Side",
    "Rectory",
    "The Grange",
    "Holly Tree",
    "Birchwood",
    "Maple",
    "Sycamore",
    "Laurel",
];

/// What GP practices call themselves.
pub(crate) const PRACTICE_SUFFIXES: [&str; 6] = [
    "Surgery",
    "Medical Centre",
    "Health Centre",
    "Medical Practice",
    "Family Practice",
    "Group Practice",
];

/// Trust name endings, after the town name.
pub(crate) const TRUST_SUFFIXES: [&str; 6] = [
    "Teaching Hospitals NHS Trust",
    "Teaching Hospitals NHS Foundation Trust",
    "University Hospitals NHS Foundation Trust",
    "Hospitals NHS Foundation Trust",
    "and District NHS Foundation Trust",
    "Royal Hospitals NHS Trust",
];

/// Hospital site name endings, after the town name.
pub(crate) const SITE_SUFFIXES: [&str; 10] = [
    "General Hospital",
    "Royal Infirmary",
    "District General Hospital",
    "Community Hospital",
    "Memorial Hospital",
    "Women's Hospital",
    "Children's Hospital",
    "Eye Hospital",
    "Chest Hospital",
    "Treatment Centre",
];
