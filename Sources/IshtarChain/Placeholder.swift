// IshtarChain: being written.
