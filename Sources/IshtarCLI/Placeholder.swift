// IshtarCLI: being written in this change; replaced as the module lands.
