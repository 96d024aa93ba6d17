import Foundation
import IshtarCLI

IshtarMain.disableCoreDumps()
exit(IshtarMain.run(Array(CommandLine.arguments.dropFirst())))
