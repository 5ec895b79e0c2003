fn main() {
    println!("vipctl {}", env!("CARGO_PKG_VERSION"));
}
