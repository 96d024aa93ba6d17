import ArgumentParser
import Foundation

/// The `ishtar` command: one program for every role (operator tools today; node, staker,
/// finality provider, covenant and watcher as they land).
public struct Ishtar: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ishtar",
        abstract: "Ishtar: a Bitcoin-staking control-plane chain.",
        discussion: """
            Exit codes: 0 success, 1 a verification that failed, 2 bad input (one line on \
            stderr says what is wrong).
            """,
        version: "0.1.0",
        subcommands: [KeysCommand.self, EOTSCommand.self, StakingCommand.self, BTCCommand.self, TxCommand.self, FinalityCommand.self, CovenantCommand.self, RelayCommand.self, WatchCommand.self, QueryCommand.self, NodeCommand.self, DevnetCommand.self])

    public init() {}
}

/// Errors a command reports to the user; each maps to an exit code.
public enum CLIError: Error, Equatable, CustomStringConvertible {
    /// The input was well-formed but did not verify (a signature, a proof). Exit code 1.
    case verificationFailed(String)
    /// The input was malformed or unusable. Exit code 2.
    case badInput(String)

    public var description: String {
        switch self {
        case .verificationFailed(let m), .badInput(let m): m
        }
    }

    /// The process exit status for this error.
    public var exitCode: Int32 {
        switch self {
        case .verificationFailed: 1
        case .badInput: 2
        }
    }
}

/// Entry point used by the `ishtar` executable, kept in the library so tests drive the
/// same code path the program runs.
public enum IshtarMain {
    /// Parses `arguments`, runs the command and returns the exit status. Help and version
    /// requests print and return 0; every error prints one line on stderr.
    public static func run(_ arguments: [String]) -> Int32 {
        do {
            var command = try Ishtar.parseAsRoot(arguments)
            try command.run()
            return 0
        } catch let error as CLIError {
            printError(error.description)
            return error.exitCode
        } catch {
            let code = Ishtar.exitCode(for: error)
            if code == .success {
                // --help, --version: ArgumentParser prints these itself.
                print(Ishtar.fullMessage(for: error))
                return 0
            }
            printError(Ishtar.message(for: error))
            return 2
        }
    }

    /// Turns core dumps off for this process: the commands hold decrypted keys (a node for
    /// its whole run), and a crash should not leave them in a core file or a crash
    /// collector's store (systemd-coredump and apport honour a zero limit). Called by the
    /// `ishtar` executable before anything else.
    public static func disableCoreDumps() {
        var none = rlimit(rlim_cur: 0, rlim_max: 0)
        if setrlimit(Int32(RLIMIT_CORE.rawValue), &none) != 0 {
            printError("warning: cannot turn core dumps off (\(String(cString: strerror(errno)))); a crash could write keys to disk")
        }
    }

    static func printError(_ message: String) {
        let line = "ishtar: error: " + message.split(separator: "\n").joined(separator: " ") + "\n"
        FileHandle.standardError.write(Data(line.utf8))
    }
}
