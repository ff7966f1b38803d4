//! Redis's geohash arithmetic: 52-bit interleaved cells stored as sorted-set scores, their
//! decoding to cell centres, the standard base32 geohash, and distances on Redis's sphere.

pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;
pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;
const STEP: u32 = 26;
pub const EARTH_RADIUS_M: f64 = 6372797.560856;
const D_R: f64 = std::f64::consts::PI / 180.0;

fn spread(v: u32) -> u64 {
    let mut x = v as u64;
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

fn squash(v: u64) -> u32 {
    let mut x = v & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    ((x | (x >> 16)) & 0x0000_0000_FFFF_FFFF) as u32
}

/// Whether a point can be indexed (Redis's limits: the Web Mercator latitude band).
pub fn valid(lon: f64, lat: f64) -> bool {
    (LONG_MIN..=LONG_MAX).contains(&lon) && (LAT_MIN..=LAT_MAX).contains(&lat)
}

/// Redis's `geohashEncode` over the given latitude range (the index uses ±85.05, the
/// standard geohash string ±90).
fn encode_range(lon: f64, lat: f64, lat_min: f64, lat_max: f64) -> u64 {
    let lat_offset = (lat - lat_min) / (lat_max - lat_min) * (1u64 << STEP) as f64;
    let lon_offset = (lon - LONG_MIN) / (LONG_MAX - LONG_MIN) * (1u64 << STEP) as f64;
    spread(lat_offset as u32) | (spread(lon_offset as u32) << 1)
}

/// The 52-bit cell of a point, as stored in the sorted set.
pub fn encode(lon: f64, lat: f64) -> u64 {
    encode_range(lon, lat, LAT_MIN, LAT_MAX)
}

/// The centre of a cell, clamped to the indexable limits (`geohashDecodeToLongLatWGS84`).
pub fn decode(bits: u64) -> (f64, f64) {
    let ilat = squash(bits) as f64;
    let ilon = squash(bits >> 1) as f64;
    let scale = (1u64 << STEP) as f64;
    let (lat_scale, lon_scale) = (LAT_MAX - LAT_MIN, LONG_MAX - LONG_MIN);
    let lat_lo = LAT_MIN + (ilat / scale) * lat_scale;
    let lat_hi = LAT_MIN + ((ilat + 1.0) / scale) * lat_scale;
    let lon_lo = LONG_MIN + (ilon / scale) * lon_scale;
    let lon_hi = LONG_MIN + ((ilon + 1.0) / scale) * lon_scale;
    let lon = ((lon_lo + lon_hi) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((lat_lo + lat_hi) / 2.0).clamp(LAT_MIN, LAT_MAX);
    (lon, lat)
}

/// The 11-character standard geohash of a stored cell (GEOHASH).
pub fn to_string(bits: u64) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (lon, lat) = decode(bits);
    let std = encode_range(lon, lat, -90.0, 90.0);
    (0..11)
        .map(|i| {
            let idx = if i == 10 { 0 } else { (std >> (52 - (i + 1) * 5)) & 0x1f };
            ALPHABET[idx as usize] as char
        })
        .collect()
}

/// Distance along a meridian (`geohashGetLatDistance`).
pub fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_M * ((lat2 * D_R) - (lat1 * D_R)).abs()
}

/// Haversine distance in metres on Redis's sphere (`geohashGetDistance`).
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let (lon1r, lon2r) = (lon1 * D_R, lon2 * D_R);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let (lat1r, lat2r) = (lat1 * D_R, lat2 * D_R);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_M * a.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_redis_for_palermo() {
        // GEOADD Sicily 13.361389 38.115556 "Palermo": score, GEOPOS and GEOHASH from Redis 7.0.
        let bits = encode(13.361389, 38.115556);
        assert_eq!(bits, 3479099956230698);
        let (lon, lat) = decode(bits);
        assert!((lon - 13.361389338970184).abs() < 1e-12 && (lat - 38.1155563954963).abs() < 1e-12);
        assert_eq!(to_string(bits), "sqc8b49rny0");
        let d = distance(13.361389338970184, 38.1155563954963, 15.087267458438873, 37.50266842333162);
        assert!((d - 166274.1516).abs() < 0.001, "{d}");
    }
}
