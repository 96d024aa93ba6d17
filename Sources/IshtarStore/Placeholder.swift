// IshtarStore: being written.
