import Foundation
import IshtarCLI

exit(IshtarMain.run(Array(CommandLine.arguments.dropFirst())))
