import Foundation

/// Measures the cost of one operation: warms up, then runs `repeats` batches of
/// `iterations` and keeps the median batch, because these machines are shared and noisy.
func microsecondsPerOp(iterations: Int, repeats: Int = 5, _ body: (Int) -> Void) -> Double {
    for i in 0..<max(1, iterations / 10) { body(i) }
    var samples: [Double] = []
    let clock = ContinuousClock()
    for _ in 0..<repeats {
        let start = clock.now
        for i in 0..<iterations { body(i) }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        samples.append(seconds * 1e6 / Double(iterations))
    }
    samples.sort()
    return samples[samples.count / 2]
}

/// Rounds to three decimals so the JSON stays readable.
func rounded(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }

/// Prints one JSON object on one line, keys sorted: the last line of every bench.
func printJSONLine(_ object: [String: Any]) {
    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]),
          let text = String(data: data, encoding: .utf8) else {
        print("{}")
        return
    }
    print(text)
}

/// Progress goes to stderr so stdout's last line stays the JSON result.
func progress(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

/// An operation and its baseline, timed in alternating batches (A B A B …) so that a change
/// in machine speed hits both alike; the ratio is the median of the per-pair ratios.
struct Paired {
    var operation: Double
    var baseline: Double
    var ratio: Double
}

func pairedMicroseconds(
    iterations: Int, pairs: Int = 9, operation: (Int) -> Void, baseline: (Int) -> Void
) -> Paired {
    for i in 0..<max(1, iterations / 10) {
        operation(i)
        baseline(i)
    }
    let clock = ContinuousClock()
    func batch(_ body: (Int) -> Void) -> Double {
        let start = clock.now
        for i in 0..<iterations { body(i) }
        let d = clock.now - start
        return (Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18) * 1e6 / Double(iterations)
    }
    var a: [Double] = [], b: [Double] = [], r: [Double] = []
    for _ in 0..<pairs {
        let x = batch(operation), y = batch(baseline)
        a.append(x)
        b.append(y)
        r.append(x / y)
    }
    func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
    return Paired(operation: median(a), baseline: median(b), ratio: median(r))
}
