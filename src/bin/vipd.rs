fn main() {
    println!("vipd {}", env!("CARGO_PKG_VERSION"));
}
